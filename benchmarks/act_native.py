"""Native fused acting path vs the NumPy acting path, each against SB3 PPO, in one process.

For every case and seed of benchmarks/vs_sb3.py: refrl PPO with ``policy.native_act = False``
(the NumPy forward + sampling per env step, as before the native path), refrl PPO with the
native path (the float32 default), and SB3 PPO; same env, hyperparameters, seed and budget, all
single-threaded (vs_sb3.py sets the thread variables and torch.set_num_threads(1)).

    python benchmarks/act_native.py --cases cartpole-default pendulum-default cartpole-zoo --seeds 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_sb3  # noqa: E402  (sets the single-thread environment before NumPy/torch load)

import refrl  # noqa: E402


def run_refrl(env_id: str, steps: int, hp: dict, seed: int, native: bool) -> dict[str, float]:
    agent = refrl.PPO(env_id, seed=seed, **hp)
    agent.policy.native_act = native
    t0, c0 = time.perf_counter(), time.process_time()
    agent.learn(steps, progress_bar=False)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    ret = vs_sb3.evaluate(lambda o: agent.predict(o, deterministic=True)[0], env_id)
    agent.close()
    return {"sps": agent.num_timesteps / dt, "cpu_sps": agent.num_timesteps / cpu, "eval": ret}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["cartpole-default", "pendulum-default", "cartpole-zoo"],
                    choices=sorted(vs_sb3.CASES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="override every case's budget (smoke runs)")
    args = ap.parse_args()
    print("| case | seed | steps | SB3 SPS | refrl NumPy-act SPS (ratio; CPU ratio) | refrl native-act SPS (ratio; CPU ratio) "
          "| eval NumPy / native / SB3 |")
    print("|---|---|---|---|---|---|---|")
    for name in args.cases:
        case = vs_sb3.CASES[name]
        steps = args.steps or case["steps"]
        for seed in args.seeds:
            old = run_refrl(case["env"], steps, case["hp"], seed, native=False)
            new = run_refrl(case["env"], steps, case["hp"], seed, native=True)
            peer = vs_sb3.run_sb3(case["env"], steps, case["hp"], seed)

            def cell(r):
                return f"{r['sps']:.0f} ({r['sps'] / peer['sps']:.1f}x; {r['cpu_sps'] / peer['cpu_sps']:.1f}x)"

            print(f"| {name} | {seed} | {steps} | {peer['sps']:.0f} | {cell(old)} | {cell(new)} | "
                  f"{old['eval']:.1f} / {new['eval']:.1f} / {peer['eval']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
