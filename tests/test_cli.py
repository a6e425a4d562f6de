"""`refrl train | eval | plot`: run directories, resume, Ctrl-C, and bad inputs (in-process)."""

from __future__ import annotations

import csv
import json
import signal

import numpy as np
import pytest

import refrl
from refrl.algos.base import OnPolicyAlgorithm
from refrl.cli import main

FAST = ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=1", "--no-progress"]


def _train(tmp_path, *extra, steps=600, name="run", env="CartPole-v1"):
    out = tmp_path / name
    code = main(["train", "ppo", env, "--steps", str(steps), "--seed", "1", "--out", str(out),
                 "--eval-episodes", "2", *FAST, *extra])
    return code, out


def test_cli_train_writes_run_directory(tmp_path, capsys):
    code, out = _train(tmp_path)
    assert code == 0
    for name in ("config.json", "metrics.csv", "model.npz", "eval.json"):
        assert (out / name).is_file(), name
    assert list((out / "checkpoints").glob("step_*.npz"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["algo"] == "ppo" and cfg["env_id"] == "CartPole-v1" and cfg["steps"] == 600
    # tuned defaults (RL Zoo: gamma 0.98) under the --set overrides
    assert cfg["hyperparameters"]["gamma"] == 0.98 and cfg["hyperparameters"]["n_envs"] == 2
    with (out / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and "train/policy_loss" in rows[0] and "rollout/ep_rew_mean" in rows[-1]
    assert "eval: mean return" in capsys.readouterr().out
    agent = refrl.PPO.load(out / "model.npz")
    assert agent.num_timesteps >= 600


def test_cli_no_tuned_uses_sb3_defaults(tmp_path):
    code, out = _train(tmp_path, "--no-tuned")
    assert code == 0
    assert json.loads((out / "config.json").read_text())["hyperparameters"]["gamma"] == 0.99


def test_cli_config_file(tmp_path):
    cfg = tmp_path / "hp.json"
    cfg.write_text(json.dumps({"learning_rate": 1e-3, "ent_coef": 0.01}))
    code, out = _train(tmp_path, "--config", str(cfg))
    assert code == 0
    hp = json.loads((out / "config.json").read_text())["hyperparameters"]
    assert hp["learning_rate"] == 1e-3 and hp["ent_coef"] == 0.01


def test_cli_eval_prints_mean_and_std(tmp_path, capsys):
    _, out = _train(tmp_path)
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "3"]) == 0
    text = capsys.readouterr().out
    assert "eval: mean return" in text and "± " in text and "over 3 episodes" in text


def test_cli_resume_continues_from_checkpoint(tmp_path, capsys):
    code, out = _train(tmp_path, steps=400)
    assert code == 0
    before = refrl.PPO.load(out / "model.npz")
    n_rows = len((out / "metrics.csv").read_text().splitlines())
    assert main(["train", "--resume", str(out), "--steps", "900", "--eval-episodes", "0", "--no-progress"]) == 0
    assert "resuming ppo on CartPole-v1" in capsys.readouterr().out
    after = refrl.PPO.load(out / "model.npz")
    assert after.num_timesteps >= 900 > before.num_timesteps
    assert after.optimizer.t > before.optimizer.t
    assert len((out / "metrics.csv").read_text().splitlines()) > n_rows  # appended, not restarted
    assert json.loads((out / "config.json").read_text())["steps"] == 900


def _sigint_at_second_update(monkeypatch):
    """Raise SIGINT in this process when the second rollout's advantages are computed."""
    original = OnPolicyAlgorithm.compute_advantages
    calls = {"n": 0}

    def interrupt_on_second(self):
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)
        return original(self)

    monkeypatch.setattr(OnPolicyAlgorithm, "compute_advantages", interrupt_on_second)


def test_cli_ctrl_c_saves_then_stops(tmp_path, monkeypatch, capsys):
    """The first SIGINT finishes the current update, saves model + checkpoint and exits 130."""
    _sigint_at_second_update(monkeypatch)
    code, out = _train(tmp_path, steps=100_000)
    assert code == 130
    agent = refrl.PPO.load(out / "model.npz")
    assert 0 < agent.num_timesteps < 1000  # stopped after the second update
    assert agent.iteration == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["train", "ppo", "NoSuchEnv-v0"], "unknown gymnasium environment id 'NoSuchEnv-v0'"),
        (["train", "ppo", "CartPole-v1", "--set", "batch_size=7"], "batch_size: must divide"),
        (["train", "ppo", "CartPole-v1", "--set", "learning_rate=-1"], "learning_rate: must be > 0"),
        (["train", "ppo", "CartPole-v1", "--set", "learnin_rate=1"], "unknown hyperparameter"),
        (["train", "ppo", "CartPole-v1", "--set", "nokey"], "--set: expected key=value"),
        (["train", "ppo", "CartPole-v1", "--steps", "0"], "--steps: must be >= 1"),
        (["train", "ppo", "CartPole-v1", "--config", "/nonexistent.json"], "--config: cannot read"),
        (["train"], "ALGO and ENV_ID are required"),
        (["train", "ppo", "CartPole-v1", "--keep", "0"], "--keep: must be >= 1"),
        (["train", "ppo", "CartPole-v1", "--checkpoint-every", "0"], "--checkpoint-every: must be >= 1"),
        (["train", "ppo", "CartPole-v1", "--eval-episodes", "-1"], "--eval-episodes: must be >= 0"),
        (["eval", "/nonexistent-run", "--episodes", "0"], "--episodes: must be >= 1"),
        (["train", "--resume", "/nonexistent-run"], "not a run directory"),
        (["eval", "/nonexistent-run"], "no checkpoint file"),
    ],
)
def test_cli_rejects_bad_input(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_rejects_unknown_algorithm(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppg", "CartPole-v1"])
    assert exc.value.code == 2
    assert "invalid choice: 'ppg'" in capsys.readouterr().err


def test_cli_params_lists_hyperparameters(capsys):
    assert main(["train", "ppo", "--params"]) == 0
    text = capsys.readouterr().out
    assert "clip_range" in text and "batch_size" in text and "normalize_advantage" in text


def test_cli_plot(tmp_path, capsys):
    _, out = _train(tmp_path)
    png = tmp_path / "curves.png"
    code = main(["plot", str(out), "-o", str(png)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == 1
        assert "pip install 'refrl[plot]'" in capsys.readouterr().err
        assert not png.exists()
    else:
        assert code == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_plot_rejects_missing_metrics(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path), "-o", str(tmp_path / "x.png")])
    assert "no metrics.csv" in capsys.readouterr().err


def test_cli_model_matches_python_api(tmp_path):
    _, out = _train(tmp_path)
    agent = refrl.PPO.load(out / "model.npz")
    obs = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    again = refrl.algos.load(out / "model.npz")
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], again.predict(obs, deterministic=True)[0])


# ------------------------------------------------------------------ module:EnvId and --env-kwargs
ENV_MODULE = '''
import gymnasium as gym

# CartPole cut at 40 steps: a return above 40 would mean the standard CartPole was used
gym.register("ShortCartPole-v0", entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
             max_episode_steps=40)
'''


@pytest.fixture
def env_module(tmp_path, monkeypatch):
    """A module ``refrl_test_envs`` (in tmp_path, on sys.path) whose import registers ShortCartPole-v0."""
    (tmp_path / "refrl_test_envs.py").write_text(ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_cli_module_env_id_train_eval_and_metadata(env_module, tmp_path, capsys):
    import os
    import subprocess
    import sys

    code, out = _train(tmp_path, steps=300, env="refrl_test_envs:ShortCartPole-v0")
    assert code == 0
    assert json.loads((out / "config.json").read_text())["env_id"] == "refrl_test_envs:ShortCartPole-v0"
    agent = refrl.PPO.load(out / "model.npz")  # the checkpoint keeps the module: building the env imports it
    assert agent.env_id == "refrl_test_envs:ShortCartPole-v0" and agent.env.spec.max_episode_steps == 40
    # a fresh process knows nothing of the module but what the saved run says
    env = dict(os.environ, PYTHONPATH=str(env_module))
    proc = subprocess.run([sys.executable, "-m", "refrl", "eval", str(out), "--episodes", "3"], capture_output=True,
                          text=True, env=env, cwd=str(tmp_path / "run"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "on refrl_test_envs:ShortCartPole-v0" in proc.stdout
    mean = float(proc.stdout.split("mean return ")[1].split()[0])
    assert 0 < mean <= 40
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2", "--env", "refrl_test_envs:ShortCartPole-v0"]) == 0


@pytest.mark.parametrize(
    ("env_id", "match"),
    [
        ("no_such_module_xyz:CartPole-v1", "cannot import module 'no_such_module_xyz'"),
        ("refrl_test_envs:NoSuchEnv-v0", "importing 'refrl_test_envs' registered no such id"),
    ],
)
def test_cli_module_env_id_errors(env_module, env_id, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", env_id, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_module_env_from_current_directory(tmp_path, monkeypatch):
    """`refrl train ppo mymodule:Env` finds mymodule.py in the current directory, as python -m would."""
    import sys

    (tmp_path / "refrl_cwd_envs.py").write_text(ENV_MODULE.replace("ShortCartPole-v0", "CwdCartPole-v0"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    code, out = _train(tmp_path, steps=200, env="refrl_cwd_envs:CwdCartPole-v0")
    assert code == 0 and (out / "model.npz").is_file()


def test_parse_env_kwargs_literals_never_eval():
    from refrl.runs import parse_env_kwargs

    kw = parse_env_kwargs(["render_mode=rgb_array", "size=(3, 4)", "goal=[1, 2]", "p=0.5", "flag=True",
                           "none=None", "name='x=y'", "cmd=__import__('os').system('false')"])
    assert kw == {"render_mode": "rgb_array", "size": (3, 4), "goal": [1, 2], "p": 0.5, "flag": True, "none": None,
                  "name": "x=y", "cmd": "__import__('os').system('false')"}  # not a literal: kept as text


def test_cli_env_kwargs_reach_the_env_and_the_saved_run(tmp_path, capsys):
    # Sutton & Barto's reward: 0 per step, -1 when the pole falls (standard CartPole: +1 per step)
    code, out = _train(tmp_path, "--env-kwargs", "sutton_barto_reward=True", steps=600)
    assert code == 0
    assert json.loads((out / "config.json").read_text())["env_kwargs"] == {"sutton_barto_reward": True}
    with (out / "metrics.csv").open() as fh:
        returns = [float(r["rollout/ep_rew_mean"]) for r in csv.DictReader(fh) if r["rollout/ep_rew_mean"]]
    assert returns and all(-1.0 <= r <= 0.0 for r in returns)
    agent = refrl.PPO.load(out / "model.npz")
    assert agent.env_kwargs == {"sutton_barto_reward": True}
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert "mean return -1.00" in capsys.readouterr().out  # the saved kwargs are used again


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--env-kwargs", "no_such_kwarg=1"], "--env-kwargs: CartPole-v1 does not take ['no_such_kwarg']"),
        (["--env-kwargs", "1bad=1"], "--env-kwargs: expected key=value with a Python name as key"),
        (["--env-kwargs", "novalue"], "--env-kwargs: expected key=value"),
    ],
)
def test_cli_env_kwargs_errors(extra, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "CartPole-v1", "--out", str(tmp_path / "x"), *extra])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


# ------------------------------------------------------------------ --seeds / --jobs
def _metrics(run_dir):
    """metrics.csv without the wall-clock columns (time/fps, time/time_elapsed)."""
    with (run_dir / "metrics.csv").open() as fh:
        return [{k: v for k, v in row.items() if k not in ("time/fps", "time/time_elapsed")}
                for row in csv.DictReader(fh)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_cli_seeds_one_run_per_seed(tmp_path, capsys, jobs):
    group = tmp_path / "group"
    code = main(["train", "ppo", "CartPole-v1", "--steps", "400", "--seeds", "3", "5", "--jobs", str(jobs),
                 "--out", str(group), "--eval-episodes", "2", *FAST])
    assert code == 0
    assert sorted(p.name for p in group.iterdir()) == ["seed_3", "seed_5"]
    for seed in (3, 5):
        cfg = json.loads((group / f"seed_{seed}" / "config.json").read_text())
        assert cfg["seed"] == seed and (group / f"seed_{seed}" / "model.npz").is_file()
    assert "refrl: seed 5: done" in capsys.readouterr().out
    # same seed, same numbers: a seed of the group equals the same seed run alone
    code, alone = _train(tmp_path, steps=400, name="alone")  # --seed 1
    assert code == 0
    assert main(["train", "ppo", "CartPole-v1", "--steps", "400", "--seed", "3", "--out", str(tmp_path / "s3"),
                 "--eval-episodes", "2", *FAST]) == 0
    assert _metrics(group / "seed_3") == _metrics(tmp_path / "s3")
    assert _metrics(group / "seed_3") != _metrics(alone)


@pytest.mark.parametrize("jobs", [1, 2])
def test_cli_seeds_a_failing_seed_is_reported_and_the_others_finish(tmp_path, capsys, jobs):
    group = tmp_path / "group"
    (group / "seed_1").mkdir(parents=True)
    (group / "seed_1" / "notes.txt").write_text("an earlier run's files")  # seed 1 refuses to overwrite them
    code = main(["train", "ppo", "CartPole-v1", "--steps", "300", "--seeds", "0", "1", "2", "--jobs", str(jobs),
                 "--out", str(group), "--eval-episodes", "0", *FAST])
    assert code == 2  # the failing seed's exit status (a usage error)
    err = capsys.readouterr().err
    assert "seed 1 FAILED (exit status 2): --out:" in err and "is not empty" in err
    assert "1 of 3 seeds failed: 1" in err
    assert (group / "seed_0" / "model.npz").is_file() and (group / "seed_2" / "model.npz").is_file()
    assert not (group / "seed_1" / "model.npz").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--seeds", "0", "0"], "--seeds: each seed once"),
        (["--seeds", "0", "--seed", "1"], "give either --seed S or --seeds"),
        (["--seeds", "0", "1", "--jobs", "0"], "--jobs: must be an integer >= 1"),
        (["--jobs", "2"], "--jobs: only with --seeds"),
        (["--seeds", "0", "1", "--set", "gamma=2"], "gamma"),  # checked once, before any seed starts
    ],
)
def test_cli_seeds_errors(extra, match, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "CartPole-v1", "--out", str(tmp_path / "g"), *extra])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


# ------------------------------------------------------------------ --params
def _params_table(text):
    rows = {}
    for line in text.splitlines()[2:]:
        name, value, source = line.replace("[64, 64]", "[64,64]").split()[:3]
        rows[name] = (value, source)
    return rows


def test_cli_params_shows_the_values_the_run_uses_and_their_source(tmp_path, capsys):
    cfg = tmp_path / "hp.json"
    cfg.write_text(json.dumps({"learning_rate": 5e-4, "ent_coef": 0.01}))
    assert main(["train", "ppo", "CartPole-v1", "--params", "--config", str(cfg), "--set", "ent_coef=0.02",
                 "--set", "n_epochs=3", "--env-kwargs", "sutton_barto_reward=True"]) == 0
    text = capsys.readouterr().out
    rows = _params_table(text.replace("{'sutton_barto_reward': True}", "{sutton_barto_reward:True}"))
    assert rows["steps"] == ("100000", "tuned")  # RL Zoo's budget for CartPole-v1
    assert rows["n_envs"] == ("8", "tuned") and rows["gae_lambda"] == ("0.8", "tuned")
    assert rows["learning_rate"] == ("0.0005", "config")  # the config file over the tuned 1e-3
    assert rows["ent_coef"] == ("0.02", "--set")  # --set over the config file
    assert rows["n_epochs"] == ("3", "--set")
    assert rows["vf_coef"] == ("0.5", "default") and rows["clip_range"] == ("0.2", "tuned")
    assert rows["env_kwargs"] == ("{sutton_barto_reward:True}", "--env-kwargs")
    # and the run uses exactly these
    code, out = _train(tmp_path, "--config", str(cfg), "--set", "ent_coef=0.02", name="r")
    hp = json.loads((out / "config.json").read_text())["hyperparameters"]
    assert code == 0 and hp["learning_rate"] == 5e-4 and hp["ent_coef"] == 0.02 and hp["gae_lambda"] == 0.8


def test_cli_params_without_tuned_and_steps(capsys):
    assert main(["train", "ppo", "CartPole-v1", "--params", "--no-tuned", "--steps", "5000"]) == 0
    rows = _params_table(capsys.readouterr().out)
    assert rows["steps"] == ("5000", "--steps") and rows["n_envs"] == ("1", "default")
    assert main(["train", "trpo", "--params"]) == 0  # no env: the defaults
    rows = _params_table(capsys.readouterr().out)
    assert rows["cg_damping"][1] == "default" and rows["steps"] == ("100000", "default")


def test_cli_params_rejects_invalid_values(capsys):
    with pytest.raises(SystemExit):
        main(["train", "ppo", "CartPole-v1", "--params", "--set", "batch_size=7"])
    assert "batch_size: must divide" in capsys.readouterr().err


# ------------------------------------------------------------------ plot: mean ± band over seeds
def test_seed_statistics_mean_band_grid_and_smoothing():
    from refrl.plots import moving_average, seed_statistics

    a = ([0, 10, 20, 30], [0.0, 10.0, 20.0, 30.0])
    b = ([5, 15, 25], [np.nan, 15.0, 5.0])  # NaN: no episode had finished yet
    grid, mean, lo, hi = seed_statistics([a, b], band="std")
    # the steps both seeds cover ([15, 25]), every x of either inside it; b interpolated at 20 = 10
    np.testing.assert_array_equal(grid, [15, 20, 25])
    ya, yb = np.array([15.0, 20.0, 25.0]), np.array([15.0, 10.0, 5.0])
    np.testing.assert_allclose(mean, (ya + yb) / 2)
    sd = np.std([ya, yb], axis=0, ddof=1)
    np.testing.assert_allclose(lo, mean - sd)
    np.testing.assert_allclose(hi, mean + sd)
    _, _, lo, hi = seed_statistics([a, b], band="minmax")
    np.testing.assert_allclose(lo, np.minimum(ya, yb))
    np.testing.assert_allclose(hi, np.maximum(ya, yb))
    _, m1, lo1, hi1 = seed_statistics([a], band="std")  # one seed: its curve, no band
    np.testing.assert_array_equal(m1, a[1]) and np.testing.assert_array_equal(lo1, hi1)
    np.testing.assert_allclose(moving_average([1.0, 2.0, 3.0, 4.0, 5.0], 2), [1.0, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(moving_average([1.0, 2.0, 4.0], 5), [1.0, 1.5, 7 / 3])
    _, sm, _, _ = seed_statistics([a], band="none", smooth=2)
    np.testing.assert_allclose(sm, [0.0, 5.0, 15.0, 25.0])


def test_cli_plot_run_groups(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for algo in ("ppo", "vpg"):
        assert main(["train", algo, "CartPole-v1", "--steps", "1200", "--seeds", "0", "1", "2", "--out",
                     str(tmp_path / algo), "--eval-episodes", "0", "--set", "n_envs=2", "--set", "n_steps=64",
                     "--no-progress"] + (["--set", "batch_size=64", "--set", "n_epochs=1"] if algo == "ppo" else [])) == 0
    for extra, name in ((["--smooth", "3", "--title", "CartPole-v1, 3 seeds"], "a.png"),
                        (["--band", "minmax", "--labels", "PPO", "VPG", "--y", "rollout/ep_rew_mean",
                          "--y", "train/value_loss"], "b.pdf"),
                        (["--band", "none", "--xlabel", "steps", "--ylabel", "return"], "c.svg")):
        out = tmp_path / name
        assert main(["plot", str(tmp_path / "ppo"), str(tmp_path / "vpg"), "-o", str(out), *extra]) == 0
        assert out.stat().st_size > 1000
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "b.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--smooth", "0"], "--smooth: must be an integer >= 1"),
        (["--labels", "a", "b"], "--labels: one label per DIR"),
        (["--band", "sem"], "invalid choice: 'sem'"),
    ],
)
def test_cli_plot_errors(tmp_path, extra, match, capsys):
    pytest.importorskip("matplotlib")
    _, out = _train(tmp_path, steps=200)
    with pytest.raises(SystemExit):
        main(["plot", str(out), "-o", str(tmp_path / "x.png"), *extra])
    assert match in capsys.readouterr().err


def test_cli_seeds_in_processes_ctrl_c_saves_every_seed(tmp_path):
    """SIGINT to `refrl train --seeds ... --jobs 2` reaches each running seed once: each finishes its
    update, saves and stops (130); the command exits 130 and names the way to continue."""
    import subprocess
    import sys
    import time

    group = tmp_path / "group"
    proc = subprocess.Popen([sys.executable, "-m", "refrl", "train", "ppo", "CartPole-v1", "--steps", "10000000",
                             "--seeds", "0", "1", "2", "--jobs", "2", "--out", str(group), "--checkpoint-every",
                             "100000000", *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = [group / f"seed_{s}" / "metrics.csv" for s in (0, 1)]
        for _ in range(600):  # until both running seeds have logged an update (at most 5 minutes)
            if all(p.is_file() and len(p.read_text().splitlines()) > 1 for p in started):
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    for seed in (0, 1):
        agent = refrl.PPO.load(group / f"seed_{seed}" / "model.npz")
        assert 0 < agent.num_timesteps < 10_000_000
        assert f"seed {seed}: stopped by a signal (exit status 130); continue it with: refrl train --resume" in err
    assert "seed 2: not started" in err and "FAILED" not in err
    assert not (group / "seed_2").exists()
    assert "again: aborting" not in err  # each seed saw the signal once


def test_cli_seeds_one_after_another_ctrl_c_stops_the_group(tmp_path, monkeypatch, capsys):
    _sigint_at_second_update(monkeypatch)
    group = tmp_path / "group"
    code = main(["train", "ppo", "CartPole-v1", "--steps", "100000", "--seeds", "0", "1", "--out", str(group), *FAST])
    assert code == 130
    assert refrl.PPO.load(group / "seed_0" / "model.npz").iteration == 2
    assert not (group / "seed_1").exists()
    err = capsys.readouterr().err
    assert "seed 0: stopped by a signal" in err and "seed 1: not started" in err


def test_cli_params_of_a_run_to_resume(tmp_path, capsys):
    _, out = _train(tmp_path, steps=300)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--params", "--steps", "900"]) == 0
    rows = _params_table(capsys.readouterr().out)
    assert rows["steps"] == ("900", "--steps") and rows["n_envs"] == ("2", "run") and rows["gamma"] == ("0.98", "run")
