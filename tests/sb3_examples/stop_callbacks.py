"""SB3 docs, "Callbacks": StopTrainingOnRewardThreshold, StopTrainingOnMaxEpisodes and
StopTrainingOnNoModelImprovement (SAC/A2C on Pendulum there; PPO here, CartPole for the reward
threshold so that it is reached in a CI test).  Lines that differ are marked "# refrl:"."""
import gymnasium as gym

from refrl import PPO  # refrl: was `from stable_baselines3 import SAC` / A2C (-> PPO below)
from refrl.callbacks import (  # refrl: was stable_baselines3.common.callbacks
    EvalCallback,
    StopTrainingOnMaxEpisodes,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)

# -- StopTrainingOnRewardThreshold
# Separate evaluation env
eval_env = gym.make("CartPole-v1")  # refrl: was Pendulum-v1
# Stop training when the model reaches the reward threshold
callback_on_best = StopTrainingOnRewardThreshold(reward_threshold=150, verbose=1)  # refrl: CartPole's scale
eval_callback = EvalCallback(eval_env, callback_on_new_best=callback_on_best, verbose=1)

model = PPO("MlpPolicy", "CartPole-v1", verbose=1)  # refrl: was SAC, Pendulum-v1
# Almost infinite number of timesteps, but the training will stop
# early as soon as the reward threshold is reached
model.learn(int(1e10), callback=eval_callback)
threshold_steps = model.num_timesteps  # refrl: for the checks below

# -- StopTrainingOnMaxEpisodes
# Stops training when the model reaches the maximum number of episodes
callback_max_episodes = StopTrainingOnMaxEpisodes(max_episodes=5, verbose=1)

model = PPO("MlpPolicy", "Pendulum-v1", verbose=1)  # refrl: was A2C
# Almost infinite number of timesteps, but the training will stop
# early as soon as the max number of episodes is reached
model.learn(int(1e10), callback=callback_max_episodes)
max_episodes_steps = model.num_timesteps  # refrl: for the checks below

# -- StopTrainingOnNoModelImprovement
# Separate evaluation env
eval_env = gym.make("Pendulum-v1")
# Stop training if there is no improvement after more than 3 evaluations
stop_train_callback = StopTrainingOnNoModelImprovement(max_no_improvement_evals=3, min_evals=5, verbose=1)
eval_callback = EvalCallback(eval_env, eval_freq=1000, callback_after_eval=stop_train_callback, verbose=1)

model = PPO("MlpPolicy", "Pendulum-v1", learning_rate=1e-3, verbose=1)  # refrl: was SAC
# Almost infinite number of timesteps, but the training will stop early
# as soon as the the number of consecutive evaluations without model
# improvement is greater than 3
model.learn(int(1e10), callback=eval_callback)

# ---- checks (refrl's test, not part of the example)
assert callback_on_best.parent.best_mean_reward >= 150
assert threshold_steps < 1_000_000, threshold_steps
assert max_episodes_steps == 5 * 200, max_episodes_steps  # Pendulum episodes are 200 steps
assert stop_train_callback.no_improvement_evals > 3
assert eval_callback.n_calls == model.num_timesteps  # one env: one on_step per transition
print(f"stopped at {threshold_steps}, {max_episodes_steps} and {model.num_timesteps} steps")
