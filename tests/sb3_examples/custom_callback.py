"""SB3 docs, "Callbacks / Custom Callback": the template, every hook filled in to count its calls.
Lines that differ from SB3's are marked "# refrl:"."""
from refrl import PPO  # refrl: was `from stable_baselines3 import PPO`
from refrl.callbacks import BaseCallback  # refrl: was `from stable_baselines3.common.callbacks import BaseCallback`


class CustomCallback(BaseCallback):
    """
    A custom callback that derives from ``BaseCallback``.

    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    """
    def __init__(self, verbose: int = 0):
        super().__init__(verbose)
        # Those variables will be accessible in the callback
        # (they are defined in the base class)
        # The RL model
        # self.model = None  # type: BaseAlgorithm
        # An alias for self.model.get_env(), the environment used for training
        # self.training_env # type: VecEnv
        # Number of time the callback was called
        # self.n_calls = 0  # type: int
        # num_timesteps = n_envs * n times env.step() was called
        # self.num_timesteps = 0  # type: int
        # local and global variables
        # self.locals = {}  # type: Dict[str, Any]
        # self.globals = {}  # type: Dict[str, Any]
        # The logger object, used to report things in the terminal
        # self.logger # type: stable_baselines3.common.logger.Logger
        # Sometimes, for event callback, it is useful
        # to have access to the parent object
        # self.parent = None  # type: Optional[BaseCallback]
        self.events = []  # refrl: the test's record of the calls

    def _on_training_start(self) -> None:
        """
        This method is called before the first rollout starts.
        """
        self.events.append("training_start")

    def _on_rollout_start(self) -> None:
        """
        A rollout is the collection of environment interaction
        using the current policy.
        This event is triggered before collecting new samples.
        """
        self.events.append("rollout_start")

    def _on_step(self) -> bool:
        """
        This method will be called by the model after each call to `env.step()`.

        For child callback (of an `EventCallback`), this will be called
        when the event is triggered.

        :return: If the callback returns False, training is aborted early.
        """
        self.events.append("step")
        self.logger.record("custom/reward_sum", float(self.locals["rewards"].sum()))
        return True

    def _on_rollout_end(self) -> None:
        """
        This event is triggered before updating the policy.
        """
        self.events.append("rollout_end")

    def _on_training_end(self) -> None:
        """
        This event is triggered before exiting the `learn()` method.
        """
        self.events.append("training_end")


model = PPO("MlpPolicy", "CartPole-v1", n_steps=256, batch_size=64, n_epochs=2)
callback = CustomCallback()
model.learn(1000, callback=callback)

# ---- checks (refrl's test, not part of the example)
ev = callback.events
assert ev[0] == "training_start" and ev[-1] == "training_end"
assert ev.count("rollout_start") == ev.count("rollout_end") == model.iteration
assert ev.count("step") == callback.n_calls == model.num_timesteps  # one env: one call per transition
assert callback.num_timesteps == model.num_timesteps
assert all(row.get("custom/reward_sum") is not None for row in model.logger.history)
