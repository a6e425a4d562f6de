"""SB3 docs, "Examples / Multiprocessing: Unleashing the Power of Vectorized Environments": PPO on
CartPole in 4 subprocesses, n_envs taken from the vector env.  Lines that differ are marked "# refrl:"."""
import gymnasium as gym

from refrl import PPO  # refrl: was `from stable_baselines3 import PPO`
from gymnasium.vector import AsyncVectorEnv as SubprocVecEnv  # refrl: gymnasium's (was stable_baselines3.common.vec_env)


def make_env(env_id: str, rank: int, seed: int = 0):
    """
    Utility function for multiprocessed env.

    :param env_id: the environment ID
    :param num_env: the number of environments you wish to have in subprocesses
    :param seed: the initial seed for RNG
    :param rank: index of the subprocess
    """
    def _init():
        env = gym.make(env_id)  # refrl: no render_mode="human" in a CI test
        env.reset(seed=seed + rank)
        return env
    # refrl: set_random_seed(seed) dropped: refrl seeds through PPO(seed=...)
    return _init


if __name__ == "__main__":
    env_id = "CartPole-v1"
    num_cpu = 4  # Number of processes to use
    # Create the vectorized environment
    vec_env = SubprocVecEnv([make_env(env_id, i) for i in range(num_cpu)])

    # Stable Baselines provides you with make_vec_env() helper
    # which does exactly the previous steps for you.
    # You can choose between `DummyVecEnv` (usually faster) and `SubprocVecEnv`
    # env = make_vec_env(env_id, n_envs=num_cpu, seed=0, vec_env_cls=SubprocVecEnv)

    model = PPO("MlpPolicy", vec_env, verbose=1)
    model.learn(total_timesteps=25_000)

    obs, _ = vec_env.reset()  # refrl: gymnasium VectorEnv API
    for _ in range(1000):
        action, _states = model.predict(obs)
        obs, rewards, terminated, truncated, info = vec_env.step(action)  # refrl: gymnasium VectorEnv API
        # vec_env.render()  # refrl: no render_mode (rendering needs pygame, not installed in CI)

    # ---- checks (refrl's test, not part of the example)
    assert model.config.n_envs == 4 and model.buffer.n_envs == 4
    assert model.num_timesteps >= 25_000
    assert action.shape == (4,)
    vec_env.close()
