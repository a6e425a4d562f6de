"""PPO update before/after fc1a002 + 3c51a17, in one process (CartPole-v1, RL Zoo settings, seed 0).

'old' restores the previous code paths by monkeypatching: Categorical's separate log_prob / entropy /
log_prob_grad / entropy_grad (four log-softmaxes per minibatch) and MLP.backward with
``dh *= 1 - h*h`` (a verbatim copy below); 'new' is the current code. Runs alternate, learn(20000)
each; reports wall/CPU medians and whether the final parameters are bit-identical.

    OPENBLAS_NUM_THREADS=1 python benchmarks/ppo_update_ab.py [REPEATS]
"""
import sys
import time

import numpy as np

import refrl
import refrl.config
from refrl.distributions import Categorical, Distribution
from refrl.nn import MLP
kw = refrl.config.tuned_defaults("ppo", "CartPole-v1")
new = (Categorical.log_prob_entropy, Categorical.params_grad_from_stash, MLP.backward)

def old_backward(self, dy, cache, *, out=None, need_dx=True):
    if len(cache) != self.n_layers or cache[0].shape[1] != self.sizes[0]:
        raise ValueError("MLP.backward: 'cache' does not come from this network's forward")
    B = cache[0].shape[0]
    delta = np.asarray(dy, dtype=self.dtype)
    if delta.shape != (B, self.sizes[-1]):
        raise ValueError(f"MLP.backward: 'dy' must have shape ({B}, {self.sizes[-1]}), got {delta.shape}")
    if out is None:
        dWs, dbs = self.dW, self.db
    else:
        out = self._storage(out, self.params.size, "out")
        dWs, dbs = self._views(out)
    for l in range(self.n_layers - 1, -1, -1):
        h_prev = cache[l]
        dWs[l] += h_prev.T @ delta
        dbs[l] += delta.sum(axis=0)
        if l == 0 and not need_dx:
            return None
        dh = delta @ self.W[l].T
        if l > 0:
            dh *= self._dact(h_prev)
        delta = dh
    return delta

def run(mode):
    if mode == "old":
        Categorical.log_prob_entropy = Distribution.log_prob_entropy
        Categorical.params_grad_from_stash = Distribution.params_grad_from_stash
        MLP.backward = old_backward
    else:
        Categorical.log_prob_entropy, Categorical.params_grad_from_stash, MLP.backward = new
    m = refrl.PPO("CartPole-v1", seed=0, **kw)
    t = time.perf_counter(); c = time.process_time(); m.learn(20000)
    return time.perf_counter() - t, time.process_time() - c, m.policy.params.copy()

res = {"old": [], "new": []}; P = {}
run("new")  # warm-up
for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    for mode in (("old", "new") if rep % 2 == 0 else ("new", "old")):
        w, c, p = run(mode); res[mode].append((w, c)); P[mode] = p
for k, v in res.items():
    a = np.array(v)
    print(k, "learn(20000) wall median %.3f s, min %.3f s; cpu median %.3f s" % (np.median(a[:, 0]), a[:, 0].min(), np.median(a[:, 1])))
print("final params bit-identical:", np.array_equal(P["old"], P["new"]))
