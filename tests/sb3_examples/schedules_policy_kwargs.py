"""SB3 docs: "Examples / Learning Rate Schedule" and "Custom Policy Network / Custom Network
Architecture" (policy_kwargs with activation_fn and net_arch=dict(pi=..., vf=...)).  Lines that
differ are marked "# refrl:"."""
from typing import Callable

from refrl import PPO  # refrl: was `from stable_baselines3 import PPO`


def linear_schedule(initial_value: float) -> Callable[[float], float]:
    """
    Linear learning rate schedule.

    :param initial_value: Initial learning rate.
    :return: schedule that computes
      current learning rate depending on remaining progress
    """
    def func(progress_remaining: float) -> float:
        """
        Progress will decrease from 1 (beginning) to 0.

        :param progress_remaining:
        :return: current learning rate
        """
        return progress_remaining * initial_value

    return func


# Initial learning rate of 0.001
model = PPO("MlpPolicy", "CartPole-v1", learning_rate=linear_schedule(0.001), verbose=1)
model.learn(total_timesteps=20_000)
# By default, `reset_num_timesteps` is True, in which case the learning rate schedule resets.
# progress_remaining = 1.0 - (num_timesteps / total_timesteps)
model.learn(total_timesteps=10_000, reset_num_timesteps=True)
lr_rows = [row["train/learning_rate"] for row in model.logger.history]  # refrl: for the checks below

# -- Custom Network Architecture
# Custom actor (pi) and value function (vf) networks
# of two layers of size 32 each with Relu activation function
# Note: an extra linear layer will be added on top of the pi and the vf nets, respectively
policy_kwargs = dict(activation_fn="relu",  # refrl: no torch: by name (torch.nn.ReLU is accepted too)
                     net_arch=dict(pi=[32, 32], vf=[32, 32]))
# Create the agent
model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs, verbose=1)
# Retrieve the environment
env = model.get_env()
# Train the agent
model.learn(total_timesteps=20_000)
# Save the agent
model.save("ppo_cartpole")

del model
# the policy_kwargs are automatically loaded
model = PPO.load("ppo_cartpole", env=env)

# ---- checks (refrl's test, not part of the example)
# the schedule: 1e-3 * progress_remaining after each rollout, in both runs (the second one restarts it)
first_run = lr_rows[:10]  # 20_000 steps = 10 rollouts of 2048
assert all(a > b for a, b in zip(first_run, first_run[1:])) and first_run[0] < 1e-3
assert lr_rows[10] > lr_rows[9]  # reset_num_timesteps=True restarted the schedule
assert model.policy.net_arch == (32, 32) and model.policy.vf_net_arch == (32, 32)
assert model.policy.activation == "relu"
