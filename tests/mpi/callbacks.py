"""Run under mpirun with a mode: callbacks that differ between ranks stop every rank together.

``step``: a BaseCallback whose ``_on_step`` returns False on rank 1 only, mid-rollout; every rank
must leave ``learn`` after the same (first) rollout, with no update and the same step count.
``update``: a callback given to rank 0 alone whose ``_on_update_end`` returns False after the
second update (as a ``StopTraining...`` callback of an evaluation on rank 0 does); every rank
must stop after that update with identical parameters.
``eval``: an EvalCallback on rank 0 alone (evaluations.npz and best_model.npz written once) whose
``callback_on_new_best`` stops training at the first evaluation; every rank stops together.
``eval_all``: an EvalCallback on every rank; rank 0 alone writes and prints, training finishes.
Each rank prints ``OK rank R of K <num_timesteps> <iteration> <parameter digest>``.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

import refrl
from refrl.callbacks import BaseCallback, EvalCallback, StopTrainingOnRewardThreshold

mode = sys.argv[1]
agent = refrl.PPO("CartPole-v1", seed=0, n_steps=64, n_envs=2, batch_size=64, n_epochs=2)
comm = agent.comm
assert comm.size >= 2, comm.size


class StopOnRankOne(BaseCallback):
    def _on_step(self) -> bool:
        return not (comm.rank == 1 and self.n_calls == 10)


class StopAfterTwoUpdates(BaseCallback):
    def _on_step(self) -> bool:
        return True

    def _on_update_end(self) -> bool:
        return self.model.iteration < 2


if mode == "step":
    agent.learn(100_000, callback=StopOnRankOne())
    assert agent.iteration == 0, agent.iteration  # the partial rollout was dropped on every rank
    assert agent.collector is None
elif mode == "update":
    agent.learn(100_000, callback=StopAfterTwoUpdates() if comm.rank == 0 else None)
    assert agent.iteration == 2, agent.iteration
elif mode == "eval":
    out = Path(sys.argv[2])
    callback = None
    if comm.rank == 0:
        callback = EvalCallback("CartPole-v1", n_eval_episodes=2, eval_freq=40, log_path=out, best_model_save_path=out,
                                callback_on_new_best=StopTrainingOnRewardThreshold(-1.0))  # any return is above it
    agent.learn(100_000, callback=callback)
    assert agent.iteration == 0, agent.iteration  # stopped at the first evaluation, inside the first rollout
    if comm.rank == 0:
        with np.load(out / "evaluations.npz") as data:
            assert data["timesteps"].shape == (1,), data["timesteps"]
        assert (out / "best_model.npz").is_file()
elif mode == "eval_all":
    out = Path(sys.argv[2])
    agent.learn(600, callback=EvalCallback("CartPole-v1", n_eval_episodes=2, eval_freq=40, log_path=out,
                                           best_model_save_path=out))
    assert agent.num_timesteps >= 600
    if comm.rank == 0:
        with np.load(out / "evaluations.npz") as data:
            print(f"EVALUATIONS {len(data['timesteps'])}", flush=True)
else:
    raise SystemExit(f"unknown mode {mode!r}")

steps = comm.gather(np.array([agent.num_timesteps, agent.iteration], dtype=np.float64))
assert (steps == steps[0]).all(), steps  # every rank agrees on the step count and iteration
comm.check_identical(agent.policy.params, "the policy parameters")
digest = hashlib.sha256(agent.policy.params.tobytes()).hexdigest()[:12]
agent.close()
print(f"OK rank {comm.rank} of {comm.size} {agent.num_timesteps} {agent.iteration} {digest}", flush=True)
