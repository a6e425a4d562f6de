"""`refrl train --eval-every N --eval-episodes K`: periodic evaluation on a separate env, the best
model kept in the run directory, every result in evaluations.npz, continued by --resume."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

import refrl
from refrl.cli import main
from refrl.evaluation import evaluate_policy

FAST = ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=1", "--no-progress"]


def _train(out, *extra, steps=640):
    return main(["train", "ppo", "CartPole-v1", "--steps", str(steps), "--seed", "1", "--out", str(out),
                 "--eval-every", "128", "--eval-episodes", "2", *FAST, *extra])


def test_eval_every_keeps_the_best_model_and_every_result(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out) == 0
    data = np.load(out / "evaluations.npz")
    t, results = data["timesteps"], data["results"]
    assert len(t) >= 5 and np.all(np.diff(t) > 0) and results.shape == (len(t), 2)
    means = results.mean(axis=1)
    best = refrl.PPO.load(out / "best_model.npz")
    assert best.num_timesteps == t[int(np.argmax(means))]
    again, _ = evaluate_policy(best, gym.make("CartPole-v1"), n_eval_episodes=2, seed=10_001)  # seed 10_000 + --seed
    assert again == means.max()
    with (out / "metrics.csv").open() as fh:
        evals = [float(r["eval/mean_reward"]) for r in csv.DictReader(fh) if r.get("eval/mean_reward")]
    assert evals and set(evals) <= set(means.tolist())
    assert "best evaluation" in capsys.readouterr().out


def test_resume_continues_the_evaluations(tmp_path):
    out = tmp_path / "run"
    assert _train(out, steps=640) == 0
    first = np.load(out / "evaluations.npz")["timesteps"].tolist()
    assert main(["train", "--resume", str(out), "--steps", "1280", "--eval-every", "128", "--eval-episodes", "2",
                 "--no-progress"]) == 0
    data = np.load(out / "evaluations.npz")
    t = data["timesteps"].tolist()
    assert t[:len(first)] == first and len(t) > len(first) and t == sorted(t)
    best = refrl.PPO.load(out / "best_model.npz")
    assert best.num_timesteps == t[int(np.argmax(data["results"].mean(axis=1)))]


def test_a_new_run_removes_the_old_evaluations(tmp_path):
    out = tmp_path / "run"
    assert _train(out) == 0
    assert main(["train", "ppo", "CartPole-v1", "--steps", "128", "--out", str(out), "--overwrite",
                 "--eval-episodes", "0", *FAST]) == 0
    assert not (out / "best_model.npz").exists() and not (out / "evaluations.npz").exists()


@pytest.mark.parametrize("extra, match", [
    (["--eval-every", "0"], "--eval-every: must be >= 1"),
    (["--eval-every", "100", "--eval-episodes", "0"], "--eval-every: needs --eval-episodes >= 1"),
])
def test_bad_eval_options_are_usage_errors(tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as info:
        main(["train", "ppo", "CartPole-v1", "--out", str(tmp_path / "r"), *FAST, *extra])
    assert info.value.code == 2 and match in capsys.readouterr().err
