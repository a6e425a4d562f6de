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


def _train(tmp_path, *extra, steps=600, name="run"):
    out = tmp_path / name
    code = main(["train", "ppo", "CartPole-v1", "--steps", str(steps), "--seed", "1", "--out", str(out),
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


def test_cli_ctrl_c_saves_then_stops(tmp_path, monkeypatch, capsys):
    """The first SIGINT finishes the current update, saves model + checkpoint and exits 130."""
    original = OnPolicyAlgorithm.compute_advantages
    calls = {"n": 0}

    def interrupt_on_second(self):
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)
        return original(self)

    monkeypatch.setattr(OnPolicyAlgorithm, "compute_advantages", interrupt_on_second)
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
