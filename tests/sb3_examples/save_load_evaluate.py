"""SB3 docs, "Examples / Basic Usage: Training, Saving, Loading" (DQN on LunarLander there; PPO on
CartPole here: refrl has no DQN, LunarLander needs box2d).  Lines that differ are marked "# refrl:"."""
import gymnasium as gym

from refrl import PPO  # refrl: was `from stable_baselines3 import DQN` (DQN -> PPO below)
from refrl import evaluate_policy  # refrl: was `from stable_baselines3.common.evaluation import evaluate_policy`

# Create environment
env = gym.make("CartPole-v1", render_mode="rgb_array")  # refrl: was LunarLander-v3

# Instantiate the agent
model = PPO("MlpPolicy", env, verbose=1)
# Train the agent and display a progress bar
model.learn(total_timesteps=int(2e4), progress_bar=True)  # refrl: 2e4 steps, not 2e5 (a CI test)
# Save the agent
model.save("ppo_cartpole")
del model  # delete trained model to demonstrate loading

# Load the trained agent
# NOTE: if you have loading issue, you can pass `print_system_info=True`
# to compare the system on which the model was trained vs the current one
# model = DQN.load("dqn_lunar", env=env, print_system_info=True)
model = PPO.load("ppo_cartpole", env=env)

# Evaluate the agent
# NOTE: If you use wrappers with your environment that modify rewards,
#       this will be reflected here. To evaluate with original rewards,
#       wrap environment in a "Monitor" wrapper before other wrappers.
mean_reward, std_reward = evaluate_policy(model, model.get_env(), n_eval_episodes=10)

# Enjoy trained agent
vec_env = model.get_env()
obs, _ = vec_env.reset()  # refrl: gymnasium VectorEnv API
for i in range(1000):
    action, _states = model.predict(obs, deterministic=True)
    obs, rewards, terminated, truncated, info = vec_env.step(action)  # refrl: gymnasium VectorEnv API
    # vec_env.render("human")  # refrl: rendering CartPole needs pygame, not installed in CI

# ---- checks (refrl's test, not part of the example)
import os  # noqa: E402

assert os.path.isfile("ppo_cartpole.npz")
assert isinstance(mean_reward, float) and isinstance(std_reward, float)
assert mean_reward > 100, mean_reward  # 20k steps of PPO with SB3's defaults learn CartPole partly
print(f"mean_reward={mean_reward:.2f} +/- {std_reward:.2f}")
