"""SB3 docs, "Getting Started" (guide/quickstart), with PPO.  Lines that differ from SB3's are marked
"# refrl:"; everything else is SB3's text."""
import gymnasium as gym

from refrl import PPO  # refrl: was `from stable_baselines3 import PPO`

env = gym.make("CartPole-v1", render_mode="rgb_array")

model = PPO("MlpPolicy", env, verbose=1)
model.learn(total_timesteps=10_000)

vec_env = model.get_env()
obs, _ = vec_env.reset()  # refrl: get_env() is a gymnasium VectorEnv: reset -> (obs, info)
for i in range(1000):
    action, _state = model.predict(obs, deterministic=True)
    obs, reward, terminated, truncated, info = vec_env.step(action)  # refrl: gymnasium's 5-tuple
    # vec_env.render("human")  # refrl: rendering CartPole needs pygame, not installed in CI
    # VecEnv resets automatically
    # if done:
    #   obs = vec_env.reset()

# ---- checks (refrl's test, not part of the example)
assert model.num_timesteps >= 10_000
assert obs.shape == (1, 4)
