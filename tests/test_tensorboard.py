"""TensorBoard event files (tensorboard_log=, refrl train --tensorboard) read back with TensorBoard's own reader."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

import refrl
from refrl.cli import main
from refrl.logger import Logger
from refrl.tensorboard import latest_run_id, run_folder

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

FAST = dict(n_envs=2, n_steps=64, batch_size=64, n_epochs=1)


def read_events(folder):
    """{tag: [(step, value), ...]} of every scalar in ``folder``, read by TensorBoard's EventAccumulator."""
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_events_match_csv(folder, csv_path, *, includes):
    """Same metric names (SB3's: time/total_timesteps is the step, not a scalar), same steps, same
    values (float32, as TensorBoard stores a scalar), row for row."""
    events, rows = read_events(folder), read_csv(csv_path)
    columns = set(rows[0]) - {"time/total_timesteps"}
    assert set(events) == columns
    assert {"rollout/ep_rew_mean", "time/fps", *includes} <= set(events)
    for tag, points in events.items():
        expected = [(int(r["time/total_timesteps"]), float(r[tag])) for r in rows if r[tag] != ""]
        assert [s for s, _ in points] == [s for s, _ in expected], tag
        np.testing.assert_array_equal(np.float32([v for _, v in points]), np.float32([v for _, v in expected]),
                                      err_msg=tag)


def test_tensorboard_log_writes_sb3_metrics(tmp_path):
    agent = refrl.PPO("CartPole-v1", seed=0, tensorboard_log=tmp_path / "tb", **FAST)
    agent.logger = Logger(tmp_path / "run")
    agent.learn(1000)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["PPO_1"]
    assert_events_match_csv(tmp_path / "tb" / "PPO_1", tmp_path / "run" / "metrics.csv",
                            includes={"train/policy_loss", "train/approx_kl", "train/clip_fraction"})
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == agent.iteration >= 7


def test_tensorboard_one_folder_per_run_as_sb3(tmp_path):
    """A fresh learn() gets NAME_{N+1}; reset_num_timesteps=False continues the newest; tb_log_name names it."""
    agent = refrl.VPG("CartPole-v1", seed=0, tensorboard_log=tmp_path, n_envs=2, n_steps=64)
    agent.learn(128)
    first_steps = agent.num_timesteps
    agent.learn(128)
    first, second = (read_events(tmp_path / f"VPG_{n}")["time/iterations"] for n in (1, 2))
    assert first[-1][0] == first_steps and second[-1][0] == agent.num_timesteps  # each run's own steps
    assert first[0][1] == second[0][1] == 1.0  # both start at iteration 1: two runs, not one
    agent.learn(128, reset_num_timesteps=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["VPG_1", "VPG_2"]
    continued = read_events(tmp_path / "VPG_2")["time/iterations"]
    assert continued[: len(second)] == second and len(continued) > len(second)
    assert continued[-1] == (agent.num_timesteps, float(agent.iteration))
    agent.learn(128, tb_log_name="baseline")
    assert (tmp_path / "baseline_1").is_dir()
    with pytest.raises(ValueError, match="tb_log_name: expected a folder name"):
        agent.learn(128, tb_log_name="a/b")


def test_run_folder_numbering(tmp_path):
    assert latest_run_id(tmp_path / "none", "PPO") == 0
    for name in ("PPO_1", "PPO_7", "PPO_x", "TRPO_9", "PPO_2_old"):
        (tmp_path / name).mkdir()
    assert latest_run_id(tmp_path, "PPO") == 7
    assert run_folder(tmp_path, "PPO", new=True).name == "PPO_8"
    assert run_folder(tmp_path, "PPO", new=False).name == "PPO_8"
    assert run_folder(tmp_path, "NPG", new=False).name == "NPG_1"  # nothing to continue: a new one


def test_cli_tensorboard(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"
    argv = ["train", "trpo", "CartPole-v1", "--steps", "1500", "--seed", "0", "--out", str(out), "--tensorboard",
            str(tb), "--eval-episodes", "0", "--no-progress", "--set", "n_envs=2", "--set", "n_steps=128"]
    assert main(argv) == 0
    assert sorted(p.name for p in tb.iterdir()) == ["TRPO_1"]
    assert_events_match_csv(tb / "TRPO_1", out / "metrics.csv", includes={"train/kl", "train/value_loss"})


def test_tensorboard_without_tensorboardx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'refrl\[tensorboard\]'"):
        refrl.PPO("CartPole-v1", tensorboard_log=tmp_path, **FAST)


def test_cli_tensorboard_without_tensorboardx_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "CartPole-v1", "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")])
    assert exc.value.code == 2
    assert "--tensorboard: " in capsys.readouterr().err and not (tmp_path / "tb").exists()


def test_cli_resume_continues_the_tensorboard_run(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"
    fast = ["--eval-episodes", "0", "--no-progress", "--set", "n_envs=2", "--set", "n_steps=64", "--set",
            "batch_size=64", "--set", "n_epochs=1"]
    assert main(["train", "ppo", "CartPole-v1", "--steps", "400", "--out", str(out), "--tensorboard", str(tb),
                 *fast]) == 0
    before = read_events(tb / "PPO_1")["time/iterations"]
    assert main(["train", "--resume", str(out), "--steps", "900", "--tensorboard", str(tb), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    assert sorted(p.name for p in tb.iterdir()) == ["PPO_1"]  # continued, as SB3's reset_num_timesteps=False
    after = read_events(tb / "PPO_1")["time/iterations"]
    assert after[: len(before)] == before and after[-1][0] >= 900
    assert_events_match_csv(tb / "PPO_1", out / "metrics.csv", includes={"train/policy_loss"})


def test_cli_resume_from_an_older_checkpoint_shows_each_step_once(tmp_path):
    """metrics.csv is cut back to the checkpoint's step on --resume; TensorBoard drops the same events."""
    out, tb = tmp_path / "run", tmp_path / "tb"
    assert main(["train", "ppo", "CartPole-v1", "--steps", "700", "--out", str(out), "--tensorboard", str(tb),
                 "--checkpoint-every", "128", "--keep", "10", "--eval-episodes", "0", "--no-progress", "--set",
                 "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=1"]) == 0
    ckpts = sorted((out / "checkpoints").glob("step_*.npz"))
    for newest in ckpts[-2:]:  # lose the last two checkpoints: the resume starts two updates back
        newest.unlink()
    assert main(["train", "--resume", str(out), "--steps", "900", "--tensorboard", str(tb), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    steps = [s for s, _ in read_events(tb / "PPO_1")["time/iterations"]]
    assert steps == sorted(set(steps)) and steps[-1] >= 900
    assert_events_match_csv(tb / "PPO_1", out / "metrics.csv", includes={"train/policy_loss"})
