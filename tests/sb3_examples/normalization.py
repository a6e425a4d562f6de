"""SB3 docs, "Examples / PyBullet: Normalizing input features" (VecNormalize on HalfCheetahBulletEnv
there; Pendulum-v1 here: pybullet is not installed).  refrl keeps the normalisation inside the agent
(``normalize_obs``/``normalize_reward``, saved in the checkpoint), so the VecNormalize wrapper and its
separate statistics file become two flags and nothing to save or load.  Lines that differ are
marked "# refrl:"."""
import os

import gymnasium as gym
import numpy as np  # refrl: for the checks at the end

from refrl import PPO  # refrl: was `from stable_baselines3 import PPO`

# refrl: was `from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize`
vec_env = gym.make_vec("Pendulum-v1", num_envs=1)  # refrl: was DummyVecEnv([lambda: gym.make("HalfCheetahBulletEnv-v0")])
# Automatically normalize the input features and reward
# refrl: was vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=True, clip_obs=10.)
model = PPO("MlpPolicy", vec_env, normalize_obs=True, normalize_reward=True, clip_obs=10.0)  # refrl: flags
model.learn(total_timesteps=2000)

# Don't forget to save the VecNormalize statistics when saving the agent
log_dir = "./"  # refrl: was "/tmp/" (the test runs in a fresh directory)
model.save(log_dir + "ppo_pendulum")  # refrl: the statistics are in this file
# refrl: was stats_path = os.path.join(log_dir, "vec_normalize.pkl"); vec_env.save(stats_path)
saved_mean = np.copy(model.obs_rms.mean)  # refrl: kept for the checks below

# To demonstrate loading
del model, vec_env

# Load the saved statistics
vec_env = gym.make_vec("Pendulum-v1", num_envs=1)  # refrl: a raw env: the agent normalises
# refrl: was vec_env = VecNormalize.load(stats_path, vec_env); vec_env.training = False; vec_env.norm_reward = False
# (refrl: predict never updates the statistics and never normalises rewards)

# Load the agent
model = PPO.load(log_dir + "ppo_pendulum", env=vec_env)

# ---- checks (refrl's test, not part of the example)
assert os.path.isfile("ppo_pendulum.npz") and not os.path.exists("vec_normalize.pkl")
np.testing.assert_array_equal(model.obs_rms.mean, saved_mean)  # the statistics came back with the agent
assert model.obs_rms.count > 0 and model.return_rms is not None
obs, _ = vec_env.reset(seed=0)
action, _ = model.predict(obs, deterministic=True)
assert action.shape == (1, 1) and np.all(np.abs(action) <= 2.0)
print("statistics restored; count", model.obs_rms.count)
