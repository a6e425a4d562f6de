"""``refrl rlhf sft | reward | ppo | sweep``: the miniature RLHF pipeline from the command line.

Same conventions as ``refrl train``: ``--out DIR`` receives ``config.json`` (every setting,
written before the work starts), ``metrics.csv`` (one row per epoch / iteration) and the
checkpoint (``.npz`` + JSON, written atomically, no pickle); ``--seed`` makes a run repeatable;
a progress bar when tqdm is installed (``--no-progress`` to silence it). Hyperparameter flags are
generated from the configuration dataclasses (``--help`` lists them with their documentation).

    refrl rlhf sft    --out runs/sft
    refrl rlhf reward --sft runs/sft/sft.npz --out runs/rm
    refrl rlhf ppo    --sft runs/sft/sft.npz --reward runs/rm/reward_model.npz --kl-coef 0.1 --out runs/ppo
    refrl rlhf sweep  --out runs/sweep          # all stages, then PPO for several β; CSV + figure
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

__all__ = ["add_rlhf_parser"]

_DEFAULT_BETAS = "1.0,0.5,0.3,0.2,0.1,0.05,0.03,0.01,0.0"


# ----------------------------------------------------------------------------- flags from dataclasses
def _field_docs(cls) -> dict[str, str]:
    """The string literal under each field of a dataclass (CleanRL ``Args`` style)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # pragma: no cover - source not available
        return {}
    body = tree.body[0].body
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = nxt.value.value
    return docs


def _int_tuple(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def _float_tuple(s: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


def _add_dataclass_flags(parser: argparse.ArgumentParser, cls, *, prefix: str = "", skip: tuple[str, ...] = (),
                         defaults: dict | None = None):
    group = parser.add_argument_group(f"{cls.__name__} ({prefix or 'no prefix'})" if prefix else cls.__name__)
    docs = _field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        dest = prefix.replace("-", "_") + f.name
        default = (defaults or {}).get(f.name, f.default)
        help_ = f"{docs.get(f.name, '')} (default: {default})"
        if isinstance(f.default, bool):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif isinstance(f.default, tuple):
            group.add_argument(flag, dest=dest, type=_int_tuple, default=default, metavar="N,N", help=help_)
        else:
            group.add_argument(flag, dest=dest, type=type(f.default), default=default, help=help_)


def _config_from_args(cls, args: argparse.Namespace, *, prefix: str = "", **override):
    kw = {}
    for f in dataclasses.fields(cls):
        dest = prefix.replace("-", "_") + f.name
        if hasattr(args, dest):
            kw[f.name] = getattr(args, dest)
    kw.update(override)
    return cls(**kw)


# --------------------------------------------------------------------------------------- helpers
class _Progress:
    """tqdm bar when available and wanted; otherwise nothing (the final summary is always printed)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                print("(progress bar needs tqdm: pip install 'refrl[progress]')", file=sys.stderr)
            else:
                self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, postfix: dict | None = None) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _common_flags(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--out", default=out_default, help=f"output directory (default: {out_default})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw of this stage")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar (needs tqdm)")


def _task_from_args(args):
    from refrl.rlhf.task import ToyTask

    return _config_from_args(ToyTask, args, prefix="task-")


def _write_config(out: Path, doc: dict) -> None:
    from refrl.serialization import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", doc)


def _show_samples(policy, rng: np.random.Generator, n: int = 4) -> None:
    from refrl.rlhf.task import gold_reward

    task = policy.task
    prompts = task.sample_prompts(n, rng)
    ys, _, _ = policy.sample(prompts, rng)
    gold = gold_reward(task, prompts, ys)
    for x, y, g in zip(prompts, ys, gold, strict=True):
        print(f"    {task.decode(x, y):<60s} gold {g:+.1f}")


# ----------------------------------------------------------------------------------------- stages
def _run_sft(args) -> int:
    from refrl.logger import Logger
    from refrl.rlhf.pipeline import SFTConfig, build_reference, config_dict, save_reference

    task = _task_from_args(args)
    cfg = _config_from_args(SFTConfig, args)
    out = Path(args.out)
    _write_config(out, {"command": "rlhf sft", "seed": args.seed, "task": task.config(), "sft": config_dict(cfg)})
    logger = Logger(out)
    bar = _Progress(cfg.epochs, "sft", args.progress)

    def cb(epoch, m):
        logger.store(**{"sft/nll": m["nll"]})
        logger.dump(epoch + 1)
        bar.update({"nll": m["nll"]})

    rng = np.random.default_rng(args.seed)
    policy, _, summary = build_reference(task, cfg, rng, callback=cb)
    bar.close()
    path = save_reference(out / "sft.npz", policy, {"seed": args.seed, "sft": config_dict(cfg), "summary": summary})
    print(f"SFT: train NLL {summary['train_nll']:.4f}, held-out NLL {summary['val_nll']:.4f} nats/token; "
          f"gold reward of demonstrations {summary['demo_gold_reward']:.3f}, of π_ref samples "
          f"{summary['ref_gold_reward']:.3f}")
    print("  samples of π_ref:")
    _show_samples(policy, rng)
    print(f"saved {path}")
    return 0


def _run_reward(args) -> int:
    from refrl.logger import Logger
    from refrl.rlhf.pipeline import RewardConfig, build_reward_model, config_dict, load_reference, save_reward_model

    ref = load_reference(args.sft)
    cfg = _config_from_args(RewardConfig, args)
    out = Path(args.out)
    _write_config(out, {"command": "rlhf reward", "seed": args.seed, "sft": str(args.sft),
                        "reward": config_dict(cfg)})
    logger = Logger(out)
    bar = _Progress(cfg.epochs, "reward model", args.progress)

    def cb(epoch, m):
        logger.store(**{"reward/loss": m["loss"], "reward/train_accuracy": m["train_accuracy"]})
        logger.dump(epoch + 1)
        bar.update({"loss": m["loss"]})

    model, _, summary = build_reward_model(ref, cfg, np.random.default_rng(args.seed), callback=cb)
    bar.close()
    path = save_reward_model(out / "reward_model.npz", model,
                             {"seed": args.seed, "reward": config_dict(cfg), "summary": summary})
    print(f"reward model: held-out preference accuracy {summary['test_accuracy']:.3f} "
          f"(noisy labels; the Bayes ceiling is {summary['bayes_accuracy']:.3f}), "
          f"{summary['test_accuracy_vs_gold']:.3f} against the noise-free gold ordering")
    print(f"saved {path}")
    return 0


def _ppo_metrics_line(m: dict) -> str:
    return (f"it {m['iteration']:4d}  β {m['rlhf/beta']:.3f}  proxy {m['rlhf/proxy_reward']:+.3f}  "
            f"gold {m['rlhf/gold_reward']:+.3f}  KL {m['rlhf/kl_exact']:.3f} (sampled {m['rlhf/kl_sampled']:.3f})  "
            f"H {m['rlhf/entropy']:.3f}")


def _run_ppo(args) -> int:
    from refrl.logger import Logger
    from refrl.rlhf.pipeline import config_dict, load_reference, load_reward_model, save_ppo
    from refrl.rlhf.ppo import RLHFPPO, RLHFPPOConfig, evaluate_policy

    ref = load_reference(args.sft)
    rm = load_reward_model(args.reward)
    if rm.task != ref.task:
        raise ValueError(f"--reward: the reward model was trained for {rm.task}, the SFT policy for {ref.task}")
    cfg = _config_from_args(RLHFPPOConfig, args)
    out = Path(args.out)
    _write_config(out, {"command": "rlhf ppo", "seed": args.seed, "sft": str(args.sft), "reward": str(args.reward),
                        "ppo": config_dict(cfg)})
    logger = Logger(out)
    algo = RLHFPPO(ref, rm, cfg, seed=args.seed)
    bar = _Progress(cfg.iterations, "rlhf ppo", args.progress)
    t0 = time.perf_counter()

    def cb(m):
        logger.store(**{k: v for k, v in m.items() if "/" in k})
        logger.record("time/iterations", m["iteration"])
        logger.dump(m["episodes"])
        bar.update({"gold": m["rlhf/gold_reward"], "kl": m["rlhf/kl_exact"]})
        if args.log_interval and m["iteration"] % args.log_interval == 0:
            (bar.bar.write if bar.bar is not None else print)(_ppo_metrics_line(m))

    algo.learn(cb)
    bar.close()
    ev = evaluate_policy(algo.policy, algo.ref, rm, args.eval_n, np.random.default_rng([args.seed, 7919]))
    path = save_ppo(out / "ppo.npz", algo, {"seed": args.seed, "evaluation": ev})
    print(f"PPO ({time.perf_counter() - t0:.1f} s): on {args.eval_n} fresh samples  proxy {ev['proxy_reward']:+.3f}  "
          f"gold {ev['gold_reward']:+.3f}  KL(π_θ‖π_ref) {ev['kl_exact']:.3f} nats (sampled estimate "
          f"{ev['kl_sampled']:.3f})  entropy {ev['entropy']:.3f} nats/token")
    print("  samples of π_θ:")
    _show_samples(algo.policy, np.random.default_rng(args.seed))
    print(f"saved {path}")
    return 0


def _run_sweep(args) -> int:
    from refrl.rlhf.pipeline import (
        RewardConfig,
        SFTConfig,
        build_reference,
        build_reward_model,
        config_dict,
        load_reference,
        load_reward_model,
        save_reference,
        save_reward_model,
    )
    from refrl.rlhf.ppo import RLHFPPOConfig
    from refrl.rlhf.sweep import plot_sweep, run_sweep, write_csv

    out = Path(args.out)
    cfg = _config_from_args(RLHFPPOConfig, args)
    kl_coefs = args.kl_coefs if args.kl_targets is None else ()
    kl_targets = args.kl_targets or ()
    seeds = tuple(range(args.seed, args.seed + args.n_seeds))
    doc = {"command": "rlhf sweep", "seed": args.seed, "ppo": config_dict(cfg), "kl_coefs": list(kl_coefs),
           "kl_targets": list(kl_targets), "seeds": list(seeds), "eval_every": args.eval_every, "eval_n": args.eval_n}
    rng = np.random.default_rng(args.seed)
    if args.sft:
        ref = load_reference(args.sft)
        doc["sft"] = str(args.sft)
    else:
        task = _task_from_args(args)
        sft_cfg = _config_from_args(SFTConfig, args, prefix="sft-")
        doc["task"], doc["sft"] = task.config(), config_dict(sft_cfg)
    if args.reward:
        doc["reward"] = str(args.reward)
    else:
        rm_cfg = _config_from_args(RewardConfig, args, prefix="rm-")
        doc["reward"] = config_dict(rm_cfg)
    _write_config(out, doc)
    if not args.sft:
        ref, _, s = build_reference(task, sft_cfg, rng)
        save_reference(out / "sft.npz", ref, {"seed": args.seed, "summary": s})
        print(f"SFT: held-out NLL {s['val_nll']:.4f} nats/token, gold of π_ref samples {s['ref_gold_reward']:.3f}")
    if args.reward:
        rm = load_reward_model(args.reward)
    else:
        rm, _, s = build_reward_model(ref, rm_cfg, rng)
        save_reward_model(out / "reward_model.npz", rm, {"seed": args.seed, "summary": s})
        print(f"reward model: held-out accuracy {s['test_accuracy']:.3f} (Bayes ceiling {s['bayes_accuracy']:.3f}),"
              f" {s['test_accuracy_vs_gold']:.3f} against the gold ordering")
    n_runs = (len(kl_coefs) + len(kl_targets)) * len(seeds)
    n_evals = n_runs * (cfg.iterations // args.eval_every + 2)
    bar = _Progress(n_evals, "sweep", args.progress)

    def cb(row):
        bar.update({"sqrt_kl": row["sqrt_kl"], "gold": row["gold_reward"]})
        if row["final"]:
            msg = (f"run {row['run']:2d} ({row['mode']}, β0={row['kl_coef_init']:g}"
                   + (f", target {row['kl_target']:g}" if row["mode"] == "adaptive" else "")
                   + f", seed {row['seed']}): √KL {row['sqrt_kl']:.3f}  proxy {row['proxy_reward']:+.3f}  "
                   f"gold {row['gold_reward']:+.3f}  β {row['kl_coef']:.4f}")
            (bar.bar.write if bar.bar is not None else print)(msg)

    t0 = time.perf_counter()
    rows = run_sweep(ref, rm, cfg, kl_coefs=kl_coefs, kl_targets=kl_targets, seeds=seeds,
                     eval_every=args.eval_every, eval_n=args.eval_n, callback=cb)
    bar.close()
    csv_path = write_csv(out / "sweep.csv", rows)
    print(f"{n_runs} runs in {time.perf_counter() - t0:.1f} s; wrote {csv_path}")
    try:
        fig = plot_sweep(rows, out / "sweep.png", title=f"refrl rlhf sweep (seed {args.seed}, {n_runs} PPO runs)")
    except ImportError as exc:
        print(f"no figure: {exc}", file=sys.stderr)
    else:
        print(f"wrote {fig}")
    return 0


# ---------------------------------------------------------------------------------------- parser
def add_rlhf_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``refrl rlhf {sft,reward,ppo,sweep}`` on the top-level subparsers."""
    from refrl.rlhf.pipeline import RewardConfig, SFTConfig
    from refrl.rlhf.ppo import RLHFPPOConfig
    from refrl.rlhf.task import ToyTask

    p = sub.add_parser("rlhf", help="miniature RLHF: SFT, Bradley-Terry reward model, KL-penalised PPO, sweep",
                       description=__doc__.split("\n\n")[0])
    rs = p.add_subparsers(dest="rlhf_command", required=True, metavar="STAGE")

    q = rs.add_parser("sft", help="train the reference policy π_ref on the writer's demonstrations")
    _common_flags(q, "runs/rlhf-sft")
    _add_dataclass_flags(q, ToyTask, prefix="task-")
    _add_dataclass_flags(q, SFTConfig)
    q.set_defaults(func=_run_sft)

    q = rs.add_parser("reward", help="fit a Bradley-Terry reward model on preferences over π_ref samples")
    _common_flags(q, "runs/rlhf-reward")
    q.add_argument("--sft", required=True, help="SFT checkpoint (sft.npz) of π_ref")
    _add_dataclass_flags(q, RewardConfig)
    q.set_defaults(func=_run_reward)

    q = rs.add_parser("ppo", help="token-level PPO against the reward model with a KL penalty to π_ref")
    _common_flags(q, "runs/rlhf-ppo")
    q.add_argument("--sft", required=True, help="SFT checkpoint (sft.npz): π_ref and the starting policy")
    q.add_argument("--reward", required=True, help="reward-model checkpoint (reward_model.npz)")
    q.add_argument("--log-interval", type=int, default=10, help="print a metrics line every N iterations (0: never)")
    q.add_argument("--eval-n", type=int, default=1024, help="fresh samples for the final evaluation")
    _add_dataclass_flags(q, RLHFPPOConfig)
    q.set_defaults(func=_run_ppo)

    q = rs.add_parser("sweep", help="over-optimisation: proxy and gold reward against √KL for decreasing β")
    _common_flags(q, "runs/rlhf-sweep")
    q.add_argument("--kl-coefs", type=_float_tuple, default=_float_tuple(_DEFAULT_BETAS),
                   help=f"fixed β of the runs, comma-separated (default: {_DEFAULT_BETAS})")
    q.add_argument("--kl-targets", type=_float_tuple, default=None,
                   help="instead of --kl-coefs: adaptive-controller runs to these KL targets (nats)")
    q.add_argument("--n-seeds", type=int, default=1, help="seeds per setting (seed, seed+1, ...)")
    q.add_argument("--eval-every", type=int, default=5, help="evaluate every N iterations")
    q.add_argument("--eval-n", type=int, default=512, help="fresh samples per evaluation")
    q.add_argument("--sft", default=None, help="reuse this SFT checkpoint instead of training one")
    q.add_argument("--reward", default=None, help="reuse this reward-model checkpoint instead of training one")
    _add_dataclass_flags(q, ToyTask, prefix="task-")
    _add_dataclass_flags(q, SFTConfig, prefix="sft-")
    _add_dataclass_flags(q, RewardConfig, prefix="rm-")
    # 200 iterations: long enough for the low-β runs to over-optimise
    _add_dataclass_flags(q, RLHFPPOConfig, skip=("adaptive_kl",), defaults={"iterations": 200})
    q.set_defaults(func=_run_sweep)
