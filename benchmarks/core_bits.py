"""Outputs of every compiled kernel on fixed random inputs, to compare two installs bit for bit.

    old/bin/python benchmarks/core_bits.py dump old.npz      # with each install
    new/bin/python benchmarks/core_bits.py dump new.npz
    python benchmarks/core_bits.py compare old.npz new.npz    # per kernel family: identical or not

Covers GAE, the clipped surrogate (gradient and statistics), Adam, the native MLP (y, J v, Jᵀu),
the Fisher operator (both heads, subsampled too) and the acting network (forward, Categorical and
Gaussian sampling), float32 and float64, in every kernel variant the CPU runs.
"""

from __future__ import annotations

import collections
import sys

import numpy as np


def dump(path: str) -> None:
    from refrl import _core


    out = {}
    rng = np.random.default_rng(123)
    ISAS = [i for i in ("generic", "avx2", "avx512") if _core.isa_supported(i)]
    for dt, sfx in ((np.float32, "f32"), (np.float64, "f64")):
        for T, N in ((2048, 8), (37, 13), (5, 4), (64, 1), (300, 16)):
            r, v, vn = (rng.normal(size=(T, N)).astype(dt) for _ in range(3))
            term = (rng.random((T, N)) < 0.05).astype(np.uint8)
            trunc = (rng.random((T, N)) < 0.05).astype(np.uint8)
            a, ret, fin = getattr(_core, "gae_" + sfx)(r, v, vn, term, trunc, 0.99, 0.95)
            out[f"gae_{sfx}_{T}_{N}_adv"] = a; out[f"gae_{sfx}_{T}_{N}_ret"] = ret
        for B in (1, 7, 64, 1000, 4096, 65536):
            for scale in (0.01, 0.3, 3.0):
                lpo = rng.normal(-1, 0.5, size=B).astype(dt)
                lp = (lpo + rng.normal(0, scale, size=B)).astype(dt)
                adv = rng.normal(size=B).astype(dt)
                w = (rng.random(B) < 0.8).astype(dt); w[0] = 1
                for wn, ww in (("none", None), ("w", w)):
                    res = getattr(_core, "clipped_surrogate_" + sfx)(lp, lpo, adv, ww, 0.2)
                    out[f"surr_{sfx}_{B}_{scale}_{wn}_grad"] = res[1]
                    out[f"surr_{sfx}_{B}_{scale}_{wn}_stats"] = np.array([res[0], *res[2:8]], dtype=np.float64)
        for n in (1, 13, 4000, 70000):
            th, g, m = (rng.normal(size=n).astype(dt) for _ in range(3))
            vv = rng.uniform(0, 2, size=n).astype(dt)
            for t in (1, 17):
                getattr(_core, "adam_step_" + sfx)(th, g, m, vv, t, 3e-4, 0.9, 0.999, 1e-5)
                out[f"adam_{sfx}_{n}_{t}"] = np.concatenate([th, m, vv])
        Batch = getattr(_core, "MlpBatch" + sfx.upper())
        Fisher = getattr(_core, "FisherOperator" + sfx.upper())
        Act = getattr(_core, "ActNet" + sfx.upper())
        for sizes in ([4, 64, 64, 2], [3, 64, 64, 1], [17, 100, 30, 5], [8, 300, 9]):
            for act in ("tanh", "relu"):
                n_p = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
                theta = (rng.normal(size=n_p) * 0.5).astype(dt)
                x = (rng.normal(size=(500, sizes[0])) * 2).astype(dt)
                vdir = rng.normal(size=n_p).astype(dt)
                u = rng.normal(size=(500, sizes[-1])).astype(dt)
                for isa in ISAS:
                    mb = Batch(theta, sizes, act, x, isa=isa)
                    key = f"mlp_{sfx}_{'_'.join(map(str, sizes))}_{act}_{isa}"
                    out[key + "_y"] = mb.output(); out[key + "_jv"] = mb.jvp(vdir); out[key + "_vjp"] = mb.vjp(u)
                    for head in ("categorical", "gaussian"):
                        th2 = np.concatenate([theta, (rng.normal(size=sizes[-1]) * 0.3).astype(dt)]) if head == "gaussian" else theta
                        v2 = rng.normal(size=th2.size).astype(dt)
                        op = Fisher(th2, sizes, act, head, x, damping=0.1, subsample=1, isa=isa)
                        out[f"fisher_{key}_{head}"] = op(v2)
                        op = Fisher(th2, sizes, act, head, x, damping=0.0, subsample=3, isa=isa)
                        out[f"fisher3_{key}_{head}"] = op(v2)
        for pi_sizes, vf_sizes, d in (([4, 64, 64, 2], [4, 64, 64, 1], 0), ([3, 64, 64, 1], [3, 64, 64, 1], 1), ([11, 256, 256, 3], [11, 256, 256, 1], 3), ([5, 7, 4], [5, 9, 1], 4)):
            for act in ("tanh", "relu"):
                n_pi = sum(a * b + b for a, b in zip(pi_sizes[:-1], pi_sizes[1:]))
                n_vf = sum(a * b + b for a, b in zip(vf_sizes[:-1], vf_sizes[1:]))
                theta = (rng.normal(size=n_pi + d + n_vf) * 0.4).astype(dt)
                x = (rng.normal(size=(16, pi_sizes[0])) * 2).astype(dt)
                for isa in ISAS:
                    net = Act(pi_sizes, vf_sizes, n_pi + d, act, isa)
                    key = f"act_{sfx}_{pi_sizes}_{act}_{isa}"
                    po, vo = net.forward(theta, x)
                    out[key + "_pi"] = po; out[key + "_v"] = vo
                    uu = rng.random(16)
                    a_, lp_, v_ = net.act_categorical(theta, x, uu)
                    out[key + "_cat_a"] = a_; out[key + "_cat_lp"] = lp_
                    if d:
                        eps = rng.standard_normal((16, pi_sizes[-1]))
                        lo = -np.ones(pi_sizes[-1], dt); hi = np.ones(pi_sizes[-1], dt)
                        res = net.act_gaussian(theta, x, eps, -20.0, 2.0, lo, hi)
                        for i, rr in enumerate(res):
                            out[key + f"_gauss_{i}"] = rr
    np.savez(path, **out)
    print(len(out), "arrays; KERNEL_ISA", _core.KERNEL_ISA)


def compare(path_a: str, path_b: str) -> None:
    a, b = np.load(path_a), np.load(path_b)
    diff = collections.Counter(); same = collections.Counter(); worst = {}
    for k in a.files:
        fam = k.split("_")[0] + "_" + k.split("_")[1]
        x, y = a[k], b[k]
        if x.shape == y.shape and x.tobytes() == y.tobytes():
            same[fam] += 1
        else:
            diff[fam] += 1
            xs, ys = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
            frac = float(np.mean(xs != ys))
            rel = float(np.max(np.abs(xs - ys) / (np.abs(xs) + 1e-300)))
            worst.setdefault(fam, []).append((k, frac, rel))
    for fam in sorted(set(same) | set(diff)):
        print(f"{fam:<14} identical {same[fam]:4d}  differ {diff[fam]:4d}")
    for fam, items in worst.items():
        for k, frac, rel in items[:6]:
            print(f"   {k}: {frac:.3%} of entries differ, max rel diff {rel:.2e}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
