"""SB3 docs, "Using Custom Environments" (its GoLeftEnv notebook, from the custom-env guide): define
a gymnasium.Env, check it, train on it, run it.  Lines that differ are marked "# refrl:"."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from refrl import PPO  # refrl: was `from stable_baselines3 import A2C` (A2C -> PPO below)
from gymnasium.utils.env_checker import check_env  # refrl: gymnasium's checker (was stable_baselines3.common.env_checker)


class GoLeftEnv(gym.Env):
    """
    Custom Environment that follows gym interface.
    This is a simple env where the agent must learn to go always left.
    """

    # Because of google colab, we cannot implement the GUI ('human' render mode)
    metadata = {"render_modes": ["console"]}

    # Define constants for clearer code
    LEFT = 0
    RIGHT = 1

    def __init__(self, grid_size=10, render_mode="console"):
        super(GoLeftEnv, self).__init__()
        self.render_mode = render_mode

        # Size of the 1D-grid
        self.grid_size = grid_size
        # Initialize the agent at the right of the grid
        self.agent_pos = grid_size - 1

        # Define action and observation space
        # They must be gym.spaces objects
        # Example when using discrete actions, we have two: left and right
        n_actions = 2
        self.action_space = spaces.Discrete(n_actions)
        # The observation will be the coordinate of the agent
        # this can be described both by Discrete and Box space
        self.observation_space = spaces.Box(
            low=0, high=self.grid_size, shape=(1,), dtype=np.float32
        )

    def reset(self, seed=None, options=None):
        """
        Important: the observation must be a numpy array
        :return: (np.array)
        """
        super().reset(seed=seed, options=options)
        # Initialize the agent at the right of the grid
        self.agent_pos = self.grid_size - 1
        # here we convert to float32 to make it more general (in case we want to use continuous actions)
        return np.array([self.agent_pos]).astype(np.float32), {}  # empty info dict

    def step(self, action):
        if action == self.LEFT:
            self.agent_pos -= 1
        elif action == self.RIGHT:
            self.agent_pos += 1
        else:
            raise ValueError(
                f"Received invalid action={action} which is not part of the action space"
            )

        # Account for the boundaries of the grid
        self.agent_pos = np.clip(self.agent_pos, 0, self.grid_size)

        # Are we at the left of the grid?
        terminated = bool(self.agent_pos == 0)
        truncated = False  # we do not limit the number of steps here

        # Null reward everywhere except when reaching the goal (left of the grid)
        reward = 1 if self.agent_pos == 0 else 0

        # Optionally we can pass additional info, we are not using that for now
        info = {}

        return (
            np.array([self.agent_pos]).astype(np.float32),
            reward,
            terminated,
            truncated,
            info,
        )

    def render(self):
        # agent is represented as a cross, rest as a dot
        if self.render_mode == "console":
            print("." * self.agent_pos, end="")
            print("x", end="")
            print("." * (self.grid_size - self.agent_pos))

    def close(self):
        pass


env = GoLeftEnv()
# If the environment don't follow the interface, an error will be thrown
check_env(env)  # refrl: gymnasium's check_env has no `warn` argument

# Instantiate the env
vec_env = gym.vector.SyncVectorEnv([lambda: GoLeftEnv(grid_size=10)])  # refrl: was make_vec_env(GoLeftEnv, n_envs=1, env_kwargs=dict(grid_size=10))

# Train the agent
model = PPO("MlpPolicy", env, verbose=1).learn(5000)

# Test the trained agent
# using the vecenv
obs, _ = vec_env.reset()  # refrl: gymnasium VectorEnv API
n_steps = 20
goal = False  # refrl: for the check below
for step in range(n_steps):
    action, _ = model.predict(obs, deterministic=True)
    print(f"Step {step + 1}")
    print("Action: ", action)
    obs, reward, terminated, truncated, info = vec_env.step(action)  # refrl: gymnasium VectorEnv API
    done = terminated | truncated  # refrl: gymnasium VectorEnv API
    print("obs=", obs, "reward=", reward, "done=", done)
    vec_env.envs[0].render()  # refrl: was vec_env.render() (console mode is the env's own)
    if done:
        # Note that the VecEnv resets automatically
        # when a done signal is encountered
        print("Goal reached!", "reward=", reward)
        goal = True  # refrl: for the check below
        break

# ---- checks (refrl's test, not part of the example)
assert goal and step == 8, step  # straight left from 9 to 0: 9 steps
