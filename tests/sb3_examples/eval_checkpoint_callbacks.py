"""SB3 docs, "Callbacks": EvalCallback, CheckpointCallback, CallbackList and EveryNTimesteps (SAC there;
PPO here: refrl has no SAC).  Lines that differ from SB3's are marked "# refrl:"."""
import gymnasium as gym

from refrl import PPO  # refrl: was `from stable_baselines3 import SAC` (SAC -> PPO below)
from refrl.callbacks import (  # refrl: was stable_baselines3.common.callbacks
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    EveryNTimesteps,
)

# -- EvalCallback
# Separate evaluation env
eval_env = gym.make("Pendulum-v1")
# Use deterministic actions for evaluation
eval_callback = EvalCallback(eval_env, best_model_save_path="./logs/",
                             log_path="./logs/", eval_freq=500,
                             deterministic=True, render=False)

model = PPO("MlpPolicy", "Pendulum-v1")
model.learn(5000, callback=eval_callback)

# -- CheckpointCallback
# Save a checkpoint every 1000 steps
checkpoint_callback = CheckpointCallback(
  save_freq=1000,
  save_path="./logs/",
  name_prefix="rl_model",
  save_replay_buffer=True,
  save_vecnormalize=True,
)

model = PPO("MlpPolicy", "Pendulum-v1")
model.learn(2000, callback=checkpoint_callback)

# -- CallbackList
checkpoint_callback = CheckpointCallback(save_freq=1000, save_path="./logs/")
# Separate evaluation env
eval_env = gym.make("Pendulum-v1")
eval_callback = EvalCallback(eval_env, best_model_save_path="./logs/best_model",
                             log_path="./logs/results", eval_freq=500)
# Create the callback list
callback = CallbackList([checkpoint_callback, eval_callback])

model = PPO("MlpPolicy", "Pendulum-v1")
# Equivalent to:
# model.learn(5000, callback=[checkpoint_callback, eval_callback])
model.learn(5000, callback=callback)

# -- EveryNTimesteps
# this is equivalent to defining CheckpointCallback(save_freq=500)
# checkpoint_callback will be triggered every 500 steps
checkpoint_on_event = CheckpointCallback(save_freq=1, save_path="./logs/every/")  # refrl: a folder of its own
event_callback = EveryNTimesteps(n_steps=500, callback=checkpoint_on_event)

model = PPO("MlpPolicy", "Pendulum-v1", verbose=1)

model.learn(int(2e4), callback=event_callback)

# ---- checks (refrl's test, not part of the example)
import os  # noqa: E402

import numpy as np  # noqa: E402

import refrl  # noqa: E402

evals = np.load("logs/evaluations.npz")
t = evals["timesteps"]
assert len(t) >= 10 and t.tolist() == list(range(500, 500 * len(t) + 1, 500)), t  # every 500 steps of 5000+
assert evals["results"].shape == evals["ep_lengths"].shape == (len(t), 5)
assert (evals["ep_lengths"] == 200).all()
best = refrl.PPO.load("logs/best_model.npz")
assert best.num_timesteps == evals["timesteps"][int(np.argmax(evals["results"].mean(axis=1)))]
assert os.path.isfile("logs/rl_model_1000_steps.npz") and os.path.isfile("logs/rl_model_2000_steps.npz")
assert os.path.isfile("logs/best_model/best_model.npz") and os.path.isfile("logs/results/evaluations.npz")
every = sorted(int(f.split("_")[2]) for f in os.listdir("logs/every"))
assert every == list(range(500, 20001, 500)), every
