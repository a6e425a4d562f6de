"""Run under mpirun: the last rank is started with another learning rate; every rank must stop."""

from refrl import distributed

comm = distributed.world()
config = {"algo": "ppo", "learning_rate": 3e-4, "n_steps": 2048, "net_arch": [64, 64]}
if comm.rank == comm.size - 1:
    config["learning_rate"] = 1e-3
comm.check_config({"algo": "ppo", "learning_rate": 3e-4, "n_steps": 2048, "net_arch": [64, 64]})  # agreeing: passes
comm.check_config(config)  # raises ConfigMismatchError on every rank
print(f"UNREACHED rank {comm.rank}", flush=True)
