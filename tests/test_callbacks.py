"""refrl.callbacks: SB3's hook order, stop semantics, the row a recorded value lands in, and each
callback class on real environments (fixed seeds)."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

import refrl
from refrl.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    EveryNTimesteps,
    StopTrainingOnMaxEpisodes,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)
from refrl.evaluation import evaluate_policy
from refrl.logger import Logger

SMALL = dict(n_steps=64, batch_size=32, n_epochs=1)


class Recorder(BaseCallback):
    """Records every hook with the model's step count at that moment."""

    def __init__(self, stop_at_call: int | None = None) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []
        self.stop_at_call = stop_at_call

    def _init_callback(self) -> None:
        self.events.append(("init", self.model.num_timesteps))

    def _on_training_start(self) -> None:
        self.events.append(("training_start", self.num_timesteps))

    def _on_rollout_start(self) -> None:
        self.events.append(("rollout_start", self.model.num_timesteps))

    def _on_step(self) -> bool:
        assert set(self.locals) >= {"self", "new_obs", "actions", "rewards", "dones", "infos", "n_steps"}
        self.events.append(("step", self.num_timesteps))
        return self.stop_at_call is None or self.n_calls < self.stop_at_call

    def _on_rollout_end(self) -> None:
        self.events.append(("rollout_end", self.model.num_timesteps))

    def _on_update_end(self) -> bool:
        self.events.append(("update_end", self.num_timesteps))
        return True

    def _on_training_end(self) -> None:
        self.events.append(("training_end", self.num_timesteps))


def test_hook_order_and_step_counts():
    agent = refrl.PPO("CartPole-v1", seed=0, n_envs=2, **SMALL)
    rec = Recorder()
    agent.learn(300, callback=rec)
    names = [e for e, _ in rec.events]
    assert names[:2] == ["init", "training_start"] and names[-1] == "training_end"
    body = names[2:-1]
    per_iteration = len(body) // agent.iteration
    for k in range(agent.iteration):
        it = body[k * per_iteration:(k + 1) * per_iteration]
        assert it[0] == "rollout_start" and it[-2:] == ["rollout_end", "update_end"]
        assert set(it[1:-2]) == {"step"}
    # on_step's num_timesteps counts real transitions: +2 per vector step except where an env only resets
    steps = [n for e, n in rec.events if e == "step"]
    assert all(0 < b - a <= 2 for a, b in zip(steps, steps[1:]))
    assert steps[-1] == agent.num_timesteps == rec.events[-1][1]
    ends = [n for e, n in rec.events if e == "rollout_end"]
    assert ends == [n for e, n in rec.events if e == "update_end"]
    assert rec.n_calls == len(steps) and rec.training_env is agent.get_env() and rec.logger is agent.logger


def test_on_step_false_stops_at_once_without_an_update():
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    before = agent.policy.params.copy()
    rec = Recorder(stop_at_call=10)
    out = agent.learn(10_000, callback=rec)
    assert out is agent
    names = [e for e, _ in rec.events]
    assert names.count("step") == 10 and "rollout_end" not in names and "update_end" not in names
    assert names[-1] == "training_end"
    assert agent.num_timesteps == 10  # one env, no episode ended in 10 CartPole steps from a random policy start
    np.testing.assert_array_equal(agent.policy.params, before)  # no update on the partial rollout
    assert agent.logger.history == [] and agent.iteration == 0
    agent.learn(64, reset_num_timesteps=False)  # the cut episodes are restarted: training goes on
    assert agent.iteration >= 1 and agent.num_timesteps >= 74


def test_a_function_callback_stops_after_its_update_and_the_row_is_written():
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    calls = []
    agent.learn(10_000, callback=lambda a: calls.append(a.iteration) or a.iteration < 3)
    assert calls == [1, 2, 3] and agent.iteration == 3 and len(agent.logger.history) == 3


def test_values_recorded_by_callbacks_land_in_the_row_of_their_update(tmp_path):
    """Recorded in on_step, on_rollout_end and by a plain function: all in the row of the same update,
    the last update's row included."""

    class Records(BaseCallback):
        def _on_step(self) -> bool:
            self.logger.record("custom/last_step", self.num_timesteps)
            return True

        def _on_rollout_end(self) -> None:
            self.logger.record("custom/rollout_iteration", self.model.iteration + 1)

    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    agent.logger = Logger(tmp_path)
    agent.learn(64 * 4, callback=[Records(), lambda a: a.logger.record("custom/function_iteration", a.iteration)])
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == agent.iteration >= 4
    for row in rows:
        assert row["custom/rollout_iteration"] == row["custom/function_iteration"] == row["time/iterations"]
        assert row["custom/last_step"] == row["time/total_timesteps"]


def test_a_callback_list_calls_all_and_stops_when_one_asks():
    a, b = Recorder(stop_at_call=5), Recorder()
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    agent.learn(1000, callback=CallbackList([a, b]))
    assert a.n_calls == b.n_calls == 5
    assert [e for e, _ in b.events][-1] == "training_end"


@pytest.mark.parametrize("bad", [3, "cb", [Recorder(), 3]])
def test_a_bad_callback_is_named(bad):
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    with pytest.raises(TypeError, match="callback"):
        agent.learn(100, callback=bad)


def test_an_eval_callback_does_not_change_training():
    """Evaluation uses its own env and random stream: the training run is the same with or without it."""
    plain = refrl.PPO("CartPole-v1", seed=3, **SMALL).learn(640)
    agent = refrl.PPO("CartPole-v1", seed=3, **SMALL)
    agent.learn(640, callback=EvalCallback(gym.make("CartPole-v1"), eval_freq=100, n_eval_episodes=2, verbose=0))
    np.testing.assert_array_equal(agent.policy.params, plain.policy.params)
    assert [r["train/loss"] for r in agent.logger.history] == [r["train/loss"] for r in plain.logger.history]


def test_eval_callback_keeps_the_best_model_and_every_result(tmp_path):
    agent = refrl.PPO("CartPole-v1", seed=0, n_steps=128, batch_size=64, n_epochs=4, learning_rate=1e-3)
    cb = EvalCallback(gym.make("CartPole-v1"), n_eval_episodes=3, eval_freq=256, log_path=tmp_path,
                      best_model_save_path=tmp_path / "best", verbose=0)
    agent.learn(2560, callback=cb)
    data = np.load(tmp_path / "evaluations.npz")
    assert data["timesteps"].tolist() == list(range(256, 256 * len(data["timesteps"]) + 1, 256))
    assert data["results"].shape == data["ep_lengths"].shape == (len(data["timesteps"]), 3)
    means = data["results"].mean(axis=1)
    assert cb.best_mean_reward == means.max() and cb.last_mean_reward == means[-1]
    best = refrl.PPO.load(tmp_path / "best" / "best_model.npz")
    assert best.num_timesteps == data["timesteps"][int(np.argmax(means))]
    again, _ = evaluate_policy(best, gym.make("CartPole-v1"), n_eval_episodes=3)  # the same seeded episodes
    assert again == cb.best_mean_reward
    assert all(r["eval/mean_reward"] in means for r in agent.logger.history if "eval/mean_reward" in r)


def test_checkpoint_callback_saves_every_save_freq_steps(tmp_path):
    agent = refrl.PPO("Pendulum-v1", seed=0, **SMALL)
    agent.learn(300, callback=CheckpointCallback(save_freq=100, save_path=tmp_path, name_prefix="m"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m_100_steps.npz", "m_200_steps.npz", "m_300_steps.npz"]
    assert refrl.PPO.load(tmp_path / "m_200_steps.npz").num_timesteps == 200


def test_every_n_timesteps_triggers_its_child():
    rec = Recorder()
    agent = refrl.PPO("Pendulum-v1", seed=0, n_envs=2, **SMALL)
    agent.learn(512, callback=EveryNTimesteps(n_steps=100, callback=rec))
    triggers = [n for e, n in rec.events if e == "step"]
    assert triggers == [100 * k for k in range(1, len(triggers) + 1)] and triggers[-1] >= 500


def test_stop_on_reward_threshold_and_its_parent_check():
    agent = refrl.PPO("CartPole-v1", seed=0, **SMALL)
    stop = StopTrainingOnRewardThreshold(reward_threshold=5)
    cb = EvalCallback(gym.make("CartPole-v1"), callback_on_new_best=stop, eval_freq=50, n_eval_episodes=1,
                      verbose=0)
    agent.learn(100_000, callback=cb)
    assert agent.num_timesteps == 50 and cb.best_mean_reward >= 5  # the first evaluation passes 5
    with pytest.raises(TypeError, match="EvalCallback"):
        refrl.PPO("CartPole-v1", seed=0, **SMALL).learn(100, callback=StopTrainingOnRewardThreshold(5))


def test_stop_on_no_model_improvement():
    """An untrained policy never moves between updates of a huge rollout: every evaluation after the
    first is no improvement, so training stops at evaluation min_evals + max_no_improvement_evals + 1."""
    agent = refrl.PPO("CartPole-v1", seed=0, n_steps=4096, batch_size=64, n_epochs=1)
    stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=2, min_evals=1)
    cb = EvalCallback(gym.make("CartPole-v1"), callback_after_eval=stop, eval_freq=100, n_eval_episodes=1, verbose=0)
    agent.learn(100_000, callback=cb)
    assert agent.num_timesteps == 100 * (1 + 2 + 1) and agent.iteration == 0


def test_stop_on_max_episodes():
    agent = refrl.PPO("Pendulum-v1", seed=0, n_envs=2, **SMALL)
    cb = StopTrainingOnMaxEpisodes(max_episodes=4)
    agent.learn(100_000, callback=cb)
    assert cb.n_episodes == 4 and agent.num_timesteps == 4 * 200  # 2 envs, 200-step episodes, side by side
