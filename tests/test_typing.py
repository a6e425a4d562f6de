"""``mypy --strict`` checks a user's script meaningfully: ``refrl.PPO`` is the class (not Any),
``learn()`` returns the subclass (Self) and ``load()`` too.  Skipped where mypy is not installed."""

from __future__ import annotations

import pytest

SCRIPT = '''
import gymnasium as gym

import refrl
from refrl.callbacks import BaseCallback, EvalCallback


class Counter(BaseCallback):
    def _on_step(self) -> bool:
        return self.num_timesteps < 1000


def train() -> refrl.PPO:
    model = refrl.PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32)
    trained = model.learn(500, callback=[Counter(), EvalCallback(gym.make("CartPole-v1"), eval_freq=100)])
    loaded = refrl.PPO.load(trained.save("m"))
    print(loaded.optimizer.lr)
    mean, std = refrl.evaluate_policy(loaded, gym.make("CartPole-v1"), n_eval_episodes=2)
    return loaded


def wrong() -> refrl.TRPO:
    return refrl.PPO("CartPole-v1").learn(64)
'''


def test_mypy_strict_types_learn_and_load_as_the_subclass(tmp_path):
    api = pytest.importorskip("mypy.api")
    (tmp_path / "user_script.py").write_text(SCRIPT)
    out, err, status = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "user_script.py")])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out + err
    assert 'Incompatible return value type (got "PPO", expected "TRPO")' in errors[0]
    assert status == 1
