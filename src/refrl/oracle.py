"""The kernels of refrl.kernels and refrl.native as literal Python, transcribed from the papers.

Slow on purpose: one line per term of each formula, in float64, over Python floats, with
the equation cited. They are the ground truth for the hypothesis tests and for
``refrl selfcheck``, and are never used by the library as a fallback for a missing build.
Each oracle returns the same NamedTuple as its kernel.

This is the bottom layer: it imports nothing of refrl but the result types, so that no oracle
shares code with what it checks. The Fisher and TRPO oracles run their own float64 forward
pass of the policy network (:func:`mlp_forward`, with J v and Jᵀ u written out beside it) and
read an ActorCritic only through its public attributes (``policy_params``, ``pi.sizes``,
``activation``, ``dist``, ``dtype``, ``preprocess_obs``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np

from refrl._types import CGResult, GAEResult, SurrogateResult, TrpoStepResult

__all__ = [
    "adam_step", "bernoulli_entropy", "bernoulli_kl", "bernoulli_log_prob", "clipped_surrogate", "conjugate_gradient",
    "fisher_matrix", "fisher_vector_product", "gae", "mlp_forward", "trpo_step",
]


def gae(rewards, values, next_values, terminated, truncated, gamma, lam) -> GAEResult:
    """Generalized Advantage Estimation, literally (Schulman et al. 2016, eqs. 11-16).

    δ_t = r_t + γ (1 − term_t) V(s'_t) − V(s_t)
    A_t = δ_t + γ λ (1 − (term_t ∨ trunc_t)) A_{t+1},   A_T = 0
    returns_t = A_t + V(s_t)

    Trusted because it is the formula transcribed term by term, one env and one step at a
    time, with no vectorisation. All arrays [T, N]; results are float64 [T, N].
    """
    T, N = np.shape(rewards)
    adv = np.zeros((T, N), dtype=np.float64)
    for n in range(N):
        next_adv = 0.0  # A_{t+1}; zero beyond the end of the rollout
        for t in reversed(range(T)):
            r_t = float(rewards[t][n])
            v_t = float(values[t][n])
            term_t = 1.0 if terminated[t][n] else 0.0
            trunc_t = 1.0 if truncated[t][n] else 0.0
            v_next = float(next_values[t][n]) if term_t == 0.0 else 0.0  # never read on a terminal step
            delta = r_t + gamma * (1.0 - term_t) * v_next - v_t  # TD residual, eq. (11)
            done = max(term_t, trunc_t)  # either kind of episode end cuts the λ-trace
            next_adv = delta + gamma * lam * (1.0 - done) * next_adv  # eq. (16), recursive form
            adv[t, n] = next_adv
    ret = np.zeros((T, N), dtype=np.float64)
    for t in range(T):
        for n in range(N):
            ret[t, n] = adv[t, n] + float(values[t][n])  # λ-return target for V
    return GAEResult(adv, ret)


def clipped_surrogate(logp, logp_old, advantages, clip_range, weights=None) -> SurrogateResult:
    """PPO clipped surrogate, gradient and statistics, literally (Schulman et al. 2017, eq. 7).

    r_i = exp(logp_i − logp_old_i)
    L = Σ_i w_i min(r_i A_i, clip(r_i, 1−ε, 1+ε) A_i) / Σ_i w_i
    ∂L/∂logp_i = w_i r_i A_i / Σ w  if r_i A_i ≤ clip(r_i, 1−ε, 1+ε) A_i  else 0
        (∂r_i/∂logp_i = r_i; the clipped branch is constant in logp_i)
    clip_fraction = Σ w [|r − 1| > ε] / Σ w;   approx_kl = Σ w ((r − 1) − log r) / Σ w
    ratio_min/max over samples with w ≠ 0;     ratio_mean = Σ w r / Σ w

    Trusted because each quantity is its definition evaluated sample by sample in float64
    (the clip is spelled max(1 − ε, min(r, 1 + ε)) exactly as in the source text).
    """
    B = len(logp)
    eps = float(clip_range)
    w = [1.0] * B if weights is None else [float(x) for x in weights]
    w_sum = sum(w)
    objective = 0.0
    grad = np.zeros(B, dtype=np.float64)
    clipped = 0.0
    kl = 0.0
    ratio_sum = 0.0
    ratios_used = []
    for i in range(B):
        if w[i] == 0.0:
            continue  # masked sample: not part of the batch
        log_ratio = float(logp[i]) - float(logp_old[i])
        r = math.exp(log_ratio)  # r_t(θ) = π_θ / π_old
        a = float(advantages[i])
        r_clip = max(1.0 - eps, min(r, 1.0 + eps))  # clip(r, 1−ε, 1+ε)
        surr1 = r * a
        surr2 = r_clip * a
        objective += w[i] * min(surr1, surr2)
        grad[i] = w[i] * r * a / w_sum if surr1 <= surr2 else 0.0
        clipped += w[i] * (1.0 if abs(r - 1.0) > eps else 0.0)
        kl += w[i] * ((r - 1.0) - log_ratio)  # k3 = (r − 1) − log r
        ratio_sum += w[i] * r
        ratios_used.append(r)
    return SurrogateResult(
        objective / w_sum,
        grad,
        clipped / w_sum,
        kl / w_sum,
        min(ratios_used),
        ratio_sum / w_sum,
        max(ratios_used),
    )


def adam_step(params, grads, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-5):
    """One step of Adam, literally (Kingma & Ba 2015, Algorithm 1, the loop body for step t).

    m_t ← β1·m_{t−1} + (1 − β1)·g_t
    v_t ← β2·v_{t−1} + (1 − β2)·g_t²
    m̂_t ← m_t / (1 − β1^t);   v̂_t ← v_t / (1 − β2^t)
    θ_t ← θ_{t−1} − α·m̂_t / (√v̂_t + ε)

    Trusted because it is the pseudocode, one parameter at a time over Python floats.
    Returns the new (params, m, v) as float64 arrays; the inputs are not modified.
    """
    n = len(params)
    theta_out, m_out, v_out = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        g_i = float(grads[i])
        m_i = beta1 * float(m[i]) + (1.0 - beta1) * g_i  # biased first moment
        v_i = beta2 * float(v[i]) + (1.0 - beta2) * g_i**2  # biased second raw moment
        m_hat = m_i / (1.0 - beta1**t)  # bias-corrected first moment
        v_hat = v_i / (1.0 - beta2**t)  # bias-corrected second moment
        theta_out[i] = float(params[i]) - lr * m_hat / (math.sqrt(v_hat) + eps)
        m_out[i], v_out[i] = m_i, v_i
    return theta_out, m_out, v_out


def conjugate_gradient(operator: Callable | np.ndarray, b, iters=10, tol=1e-10, damping=0.0) -> CGResult:
    """Conjugate gradient, literally (Hestenes & Stiefel 1952; Demmel Alg. 6.11), x_0 = 0.

    r_0 = p_0 = b
    α_k = r_kᵀ r_k / p_kᵀ (A + μI) p_k
    x_{k+1} = x_k + α_k p_k;   r_{k+1} = r_k − α_k (A + μI) p_k
    β_k = r_{k+1}ᵀ r_{k+1} / r_kᵀ r_k;   p_{k+1} = r_{k+1} + β_k p_k
    stop when rᵀr ≤ tol (or rᵀr underflows below the smallest normal float), after ``iters`` steps, or when p_kᵀ(A + μI)p_k ≤ 0.

    ``operator`` is a callable v -> A v or a square matrix. Trusted because every dot
    product and update is an explicit loop over the entries, in float64; on SPD systems
    the tests also hold it (and the kernel) to numpy.linalg.solve.
    """
    n = len(b)

    def apply(v):
        if callable(operator):
            return [float(y) for y in operator(np.asarray(v, dtype=np.float64))]
        return [sum(float(operator[i][j]) * v[j] for j in range(n)) for i in range(n)]

    def dot(u, v):
        return sum(u[i] * v[i] for i in range(n))

    x = [0.0] * n
    r = [float(bi) for bi in b]
    p = list(r)
    rr = dot(r, r)
    if rr <= tol or rr < sys.float_info.min:
        return CGResult(np.array(x), 0, math.sqrt(rr), True, "converged")
    for k in range(iters):
        Ap = apply(p)
        Ap = [Ap[i] + damping * p[i] for i in range(n)]  # (A + μI) p
        pAp = dot(p, Ap)
        if not pAp > 0.0:  # A + μI is not positive definite along p
            return CGResult(np.array(x), k, math.sqrt(rr), False, "not_positive_definite")
        alpha = rr / pAp
        x = [x[i] + alpha * p[i] for i in range(n)]
        r = [r[i] - alpha * Ap[i] for i in range(n)]
        rr_new = dot(r, r)
        if rr_new <= tol or rr_new < sys.float_info.min:
            return CGResult(np.array(x), k + 1, math.sqrt(rr_new), True, "converged")
        beta = rr_new / rr
        p = [r[i] + beta * p[i] for i in range(n)]
        rr = rr_new
    return CGResult(np.array(x), iters, math.sqrt(rr), False, "max_iterations")


# ----------------------------------------------------------------------------------------
# The policy network in float64: the oracles' own forward pass, J v and Jᵀ u
# ----------------------------------------------------------------------------------------

# Log σ bounds of the diagonal Gaussian head (as in refrl.distributions): the log σ in use is
# clip(log σ, −20, 2), and the KL, hence the Fisher, is flat in a log σ beyond them.
_LOG_STD_MIN, _LOG_STD_MAX = -20.0, 2.0


def _mlp_layers(theta, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W_l, b_l)] from a flat parameter vector in refrl's layout: for each layer l = 1..L in
    order, W_l row-major [d_{l−1}, d_l] (z_l = h_{l−1} W_l + b_l), then b_l [d_l]."""
    theta = np.asarray(theta, dtype=np.float64)
    layers, o = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = theta[o : o + d_in * d_out].reshape(d_in, d_out)
        o += d_in * d_out
        layers.append((W, theta[o : o + d_out]))
        o += d_out
    return layers


def _mlp_num_params(sizes) -> int:
    return sum(d_in * d_out + d_out for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True))


def _phi(z: np.ndarray, activation: str) -> np.ndarray:
    return np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)  # tanh or relu


def _phi_prime(z: np.ndarray, activation: str) -> np.ndarray:
    return 1.0 - np.tanh(z) ** 2 if activation == "tanh" else (z > 0.0).astype(np.float64)


def mlp_forward(theta, sizes, activation: str, x) -> np.ndarray:
    """The MLP, literally, in float64: h_0 = x, z_l = h_{l−1} W_l + b_l, h_l = φ(z_l) for the
    hidden layers (φ = tanh or relu), y = z_L (linear output). Returns y [B, d_L].

    ``theta`` is the flat parameter vector in refrl's layout (per layer W_l row-major
    [d_{l−1}, d_l], then b_l), ``sizes`` = (d_0, ..., d_L). Trusted because it is the definition,
    one layer at a time; the tests hold refrl.nn's MLP and the native MLP to it.
    """
    y, _ = _mlp_forward_cache(_mlp_layers(theta, sizes), activation, x)
    return y


def _mlp_forward_cache(layers, activation: str, x):
    h = np.asarray(x, dtype=np.float64)
    inputs, pre = [], []  # h_{l−1} and z_l of every layer
    for l, (W, b) in enumerate(layers):
        inputs.append(h)
        z = h @ W + b
        pre.append(z)
        h = _phi(z, activation) if l < len(layers) - 1 else z
    return h, (inputs, pre)


def _mlp_jvp(layers, activation: str, cache, v) -> np.ndarray:
    """J v: the derivative of the output along the parameter direction v = (V_l, c_l), forward
    mode (Pearlmutter 1994): R{h_0} = 0, R{z_l} = R{h_{l−1}} W_l + h_{l−1} V_l + c_l,
    R{h_l} = φ'(z_l) ⊙ R{z_l}; J v = R{z_L}."""
    inputs, pre = cache
    dlayers = _mlp_layers(v, [layers[0][0].shape[0]] + [W.shape[1] for W, _ in layers])
    rh = np.zeros_like(inputs[0])
    for l, ((W, _), (V, c)) in enumerate(zip(layers, dlayers, strict=True)):
        rz = rh @ W + inputs[l] @ V + c
        rh = _phi_prime(pre[l], activation) * rz if l < len(layers) - 1 else rz
    return rh


def _mlp_vjp(layers, activation: str, cache, u) -> np.ndarray:
    """Jᵀ u summed over the batch (the backward pass): δ_L = u, ∂/∂W_l = h_{l−1}ᵀ δ_l,
    ∂/∂b_l = Σ_b δ_l, δ_{l−1} = (δ_l W_lᵀ) ⊙ φ'(z_{l−1}). Flat, in the parameter layout."""
    inputs, pre = cache
    parts = []
    delta = np.asarray(u, dtype=np.float64)
    for l in reversed(range(len(layers))):
        W, _ = layers[l]
        parts.append((inputs[l].T @ delta).reshape(-1))
        parts.append(delta.sum(axis=0))
        if l > 0:
            delta = (delta @ W.T) * _phi_prime(pre[l - 1], activation)
    flat = []
    for l in range(len(layers)):  # back in forward order: W_1, b_1, W_2, b_2, ...
        flat += [parts[2 * (len(layers) - 1 - l)], parts[2 * (len(layers) - 1 - l) + 1]]
    return np.concatenate(flat)


def _policy_head(policy):
    """The policy network and head, read from ActorCritic's public attributes: (θ_π float64,
    sizes, activation, head, comps) with head "gaussian", "categorical" or "bernoulli" and comps the
    (offset, n, start) of each categorical component."""
    theta = np.array(policy.policy_params, dtype=np.float64)
    sizes = [int(d) for d in policy.pi.sizes]
    kind = type(policy.dist).__name__
    if kind == "DiagGaussian":
        return theta, sizes, policy.activation, "gaussian", []
    if kind == "Categorical":
        return theta, sizes, policy.activation, "categorical", [(0, int(policy.dist.n), int(policy.dist.start))]
    if kind == "MultiCategorical":
        comps, o = [], 0
        for n, start in zip(policy.dist.nvec, policy.dist.start, strict=True):
            comps.append((o, int(n), int(start)))
            o += int(n)
        return theta, sizes, policy.activation, "categorical", comps
    if kind == "Bernoulli":
        return theta, sizes, policy.activation, "bernoulli", []
    raise ValueError(f"oracle: unsupported action distribution {policy.dist!r}")


def _softmax(z) -> list[float]:
    zmax = max(z)
    e = [math.exp(zj - zmax) for zj in z]
    return [ej / sum(e) for ej in e]


def _log_softmax(z) -> list[float]:
    zmax = max(z)
    lse = zmax + math.log(sum(math.exp(zj - zmax) for zj in z))
    return [zj - lse for zj in z]


# ----------------------------------------------------------------------------------------
# Bernoulli (independent bits, MultiBinary): the probabilities themselves, one bit at a time
# ----------------------------------------------------------------------------------------


def _sigmoid(z: float) -> float:
    """σ(z) = 1 / (1 + e^−z), written to avoid overflowing e^−z for very negative z."""
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))


def bernoulli_log_prob(logits, actions) -> np.ndarray:
    """log π(a) = Σ_i [a_i log p_i + (1 − a_i) log(1 − p_i)], p_i = σ(z_i); logits [B, n], actions [B, n].

    Trusted because it is the log of the product of the bits' probabilities, from p itself."""
    z = np.asarray(logits, dtype=np.float64)
    a = np.asarray(actions).reshape(z.shape)
    out = np.zeros(z.shape[0])
    for b in range(z.shape[0]):
        for i in range(z.shape[1]):
            p = _sigmoid(float(z[b, i]))
            out[b] += math.log(p) if a[b, i] == 1 else math.log(1.0 - p)
    return out


def bernoulli_entropy(logits) -> np.ndarray:
    """H = −Σ_i [p_i log p_i + (1 − p_i) log(1 − p_i)], p_i = σ(z_i); logits [B, n]."""
    z = np.asarray(logits, dtype=np.float64)
    out = np.zeros(z.shape[0])
    for b in range(z.shape[0]):
        for i in range(z.shape[1]):
            p = _sigmoid(float(z[b, i]))
            out[b] -= p * math.log(p) + (1.0 - p) * math.log(1.0 - p)
    return out


def bernoulli_kl(logits_old, logits_new) -> np.ndarray:
    """KL(p ‖ q) = Σ_i [p_i log(p_i/q_i) + (1 − p_i) log((1 − p_i)/(1 − q_i))], p = σ(z^old), q = σ(z^new)."""
    zp = np.asarray(logits_old, dtype=np.float64)
    zq = np.asarray(logits_new, dtype=np.float64)
    out = np.zeros(zp.shape[0])
    for b in range(zp.shape[0]):
        for i in range(zp.shape[1]):
            p, q = _sigmoid(float(zp[b, i])), _sigmoid(float(zq[b, i]))
            out[b] += p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))
    return out


# ----------------------------------------------------------------------------------------
# Fisher-vector product and Fisher matrix
# ----------------------------------------------------------------------------------------


def _fisher_setup(policy, obs, subsample: int):
    """Network input (every ``subsample``-th observation), the forward pass at θ and the head."""
    theta, sizes, activation, head, comps = _policy_head(policy)
    x = np.asarray(policy.preprocess_obs(obs), dtype=np.float64)[::subsample]  # flatten / one-hot
    n_pi = _mlp_num_params(sizes)
    layers = _mlp_layers(theta[:n_pi], sizes)
    y, cache = _mlp_forward_cache(layers, activation, x)
    return x, layers, activation, cache, y, theta[n_pi:], head, comps


def fisher_vector_product(policy, obs, v, damping: float = 0.0, subsample: int = 1) -> np.ndarray:
    """F v + damping v with F = (1/B) Σ_b J_bᵀ M_b J_b, in float64 on the oracle's own network.

    Schulman et al. 2015, TRPO, Appendix C: F is the Hessian of the mean KL(π_θold ‖ π_θ) at θ_old.
    J_b v by forward mode through :func:`mlp_forward`'s layers (Pearlmutter 1994), M_b from the
    distribution's Fisher information, written here: per categorical component, p = softmax(z),
    M u = p ⊙ u − p (pᵀu); per Bernoulli bit, p = σ(z), M u = p (1 − p) u; for the diagonal Gaussian [μ | log σ], M = diag(1/σ², 2) with σ from
    the clipped log σ and 0 on a log σ outside the bounds. Jᵀ(·) by the backward pass (log σ is
    shared by all states: its block is the batch sum). Trusted because every piece is its
    definition on an independent float64 forward pass, and the tests hold it to the explicit
    :func:`fisher_matrix` and to the finite-difference Hessian of the mean KL.
    """
    x, layers, activation, cache, y, log_std, head, comps = _fisher_setup(policy, obs, subsample)
    v = np.asarray(v, dtype=np.float64)
    n_pi = v.size - log_std.size
    B = x.shape[0]
    jv = _mlp_jvp(layers, activation, cache, v[:n_pi])  # J v on the network output, [B, dL]
    if head == "gaussian":
        s = np.clip(log_std, _LOG_STD_MIN, _LOG_STD_MAX)
        inside = (log_std >= _LOG_STD_MIN) & (log_std <= _LOG_STD_MAX)  # KL is flat in a clipped log σ
        m_mean = jv * np.exp(-2.0 * s) / B  # M J v on μ: (1/σ²) J v
        m_log_std = np.where(inside, 2.0 * v[n_pi:], 0.0)  # on log σ: 2 v_logσ, the same for every state
        out = np.concatenate([_mlp_vjp(layers, activation, cache, m_mean), m_log_std])
    elif head == "bernoulli":
        p = 1.0 / (1.0 + np.exp(-y))
        out = _mlp_vjp(layers, activation, cache, p * (1.0 - p) * jv / B)  # diag(p (1 − p)) u per bit
    else:
        mjv = np.zeros_like(jv)
        for o, k, _ in comps:
            z = y[:, o : o + k]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            u = jv[:, o : o + k]
            mjv[:, o : o + k] = p * u - p * (p * u).sum(axis=1, keepdims=True)  # (diag(p) − ppᵀ) u
        out = _mlp_vjp(layers, activation, cache, mjv / B)
    return out + damping * v


def fisher_matrix(policy, obs, subsample: int = 1) -> np.ndarray:
    """The explicit Fisher matrix F = (1/B) Σ_b J_bᵀ M_b J_b [n_policy_params, n_policy_params].

    Literal: per sample b, the Jacobian J_b of the distribution parameters (one column per
    parameter, from J e_i on the oracle's own network) and the distribution's Fisher M_b written
    out entry by entry:
        Categorical (per component, p = softmax z):  M_ij = p_i δ_ij − p_i p_j
        DiagGaussian [μ | log σ]:  M = diag(1/σ_1², ..., 1/σ_d², 2, ..., 2)  (0 for a clipped log σ)
        Bernoulli (p = σ z):  M = diag(p_1 (1 − p_1), ..., p_n (1 − p_n))
    Trusted because it is the definition, one sample and one entry at a time. For tiny networks
    only (n jvps and B n² products in Python loops).
    """
    x, layers, activation, cache, y, log_std, head, comps = _fisher_setup(policy, obs, subsample)
    n_pi = _mlp_num_params([layers[0][0].shape[0]] + [W.shape[1] for W, _ in layers])
    n = n_pi + log_std.size
    B, dL = y.shape
    gaussian = head == "gaussian"
    P = dL + log_std.size  # number of distribution parameters per state
    J = np.zeros((B, P, n))  # J[b, k, i] = ∂(dist param k of state b)/∂θ_i
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        J[:, :dL, i] = _mlp_jvp(layers, activation, cache, e[:n_pi])
        if gaussian:
            J[:, dL:, i] = e[n_pi:]
    F = np.zeros((n, n))
    for b in range(B):
        M = np.zeros((P, P))
        if gaussian:
            for j in range(dL):
                s = min(max(float(log_std[j]), _LOG_STD_MIN), _LOG_STD_MAX)
                M[j, j] = math.exp(-2.0 * s)  # 1/σ²
                inside = _LOG_STD_MIN <= float(log_std[j]) <= _LOG_STD_MAX
                M[dL + j, dL + j] = 2.0 if inside else 0.0
        elif head == "bernoulli":
            for j in range(dL):
                p = _sigmoid(float(y[b, j]))
                M[j, j] = p * (1.0 - p)
        else:
            for o, k, _ in comps:
                p = _softmax([float(y[b, o + j]) for j in range(k)])
                for i in range(k):
                    for j in range(k):
                        M[o + i, o + j] = (p[i] if i == j else 0.0) - p[i] * p[j]
        F += J[b].T @ M @ J[b]
    return F / B


# ----------------------------------------------------------------------------------------
# TRPO step (algos/trpo.py trpo_step)
# ----------------------------------------------------------------------------------------


def trpo_step(
    policy, obs, actions, logp_old, advantages, g, *, max_kl, weights=None, cg_iters=10, cg_damping=0.1,
    cg_tol=1e-10, line_search_shrink=0.8, line_search_max_iter=10, subsample=1, line_search=True, trace=None,
) -> TrpoStepResult:
    """One TRPO (or, with ``line_search=False``, NPG) policy step, literally, in float64
    (Schulman et al. 2015, TRPO, §6 and Appendix C):

    s = CG((F + λI), g) (``conjugate_gradient`` over ``fisher_vector_product``, both oracles)
    β = √(2δ / sᵀ(F + λI)s);   θ_j = θ_old + α^j β s,  j = 0 … K−1
    accept the first j with  Σ_b w_b KL(π_old(·|s_b) ‖ π_θj(·|s_b)) / Σ w ≤ δ                 (eq. 14)
                       and  Σ_b w_b (π_θj(a_b|s_b)/π_old(a_b|s_b) − 1) Â_b / Σ w > 0
    none → θ_old.  KL and log π per sample and per component from their definitions:
    Categorical KL = Σ_k p_k (log p_k − log q_k); Bernoulli by :func:`bernoulli_kl` / :func:`bernoulli_log_prob`; Gaussian (log σ bounded to [−20, 2])
    KL = Σ_i [s_n − s_o + (σ_o² + (μ_o − μ_n)²)/(2σ_n²) − ½]; log π(a) = −½ Σ ((a − μ)/σ)² − Σ s − (d/2) log 2π.

    ``weights``: 0/1; the Fisher is built on the rows with weight 1. ``trace``: a list that
    receives (step_fraction, kl, gain) for every try. The returned θ is float64.
    Trusted because it is the algorithm of the paper written with the oracles of CG and of the
    Fisher-vector product, on the oracle's own forward pass (:func:`mlp_forward`), and with
    per-sample loops for the KL and the likelihood ratio.
    """
    B = len(advantages)
    w = [1.0] * B if weights is None else [float(v) for v in weights]
    used = [b for b in range(B) if w[b] != 0.0]
    w_sum = sum(w[b] for b in used)
    adv = [float(a) for a in advantages]
    surr_old = sum(w[b] * adv[b] for b in used) / w_sum
    theta_old = np.array(policy.policy_params, dtype=np.float64)
    obs_used = np.asarray(obs)[used]

    def result(accepted, theta, kl=0.0, gain=0.0, backtracks=0, expected=0.0, frac=0.0, cg=None, qkl=0.0, status="rejected"):
        return TrpoStepResult(theta, kl, gain, backtracks, accepted, expected, frac,
                              0 if cg is None else cg.iterations, 0.0 if cg is None else cg.residual_norm,
                              qkl, surr_old, status, math.sqrt(gnorm2) if math.isfinite(gnorm2) else math.inf)  # fmt: skip

    gg = [float(v) for v in g]
    gnorm2 = sum(v * v for v in gg)
    if not math.isfinite(gnorm2) or gnorm2 == 0.0:
        return result(False, theta_old, status="zero_gradient")

    def fvp(v):
        return fisher_vector_product(policy, obs_used, v, damping=cg_damping, subsample=subsample)

    cg = conjugate_gradient(fvp, gg, iters=cg_iters, tol=cg_tol)
    s = [float(v) for v in cg.x]
    Fs = fvp(np.array(s))
    sFs = sum(s[i] * float(Fs[i]) for i in range(len(s)))
    if not (math.isfinite(sFs) and sFs > 0.0):
        return result(False, theta_old, cg=cg, status="bad_curvature")
    beta = math.sqrt(2.0 * max_kl / sFs)  # ½ (βs)ᵀ(F + λI)(βs) = δ
    full = [beta * si for si in s]
    expected_full = sum(gg[i] * full[i] for i in range(len(s)))

    # the batch's actions and π_old on the used rows (network input: flatten / one-hot)
    x = np.asarray(policy.preprocess_obs(obs_used), dtype=np.float64)
    _, sizes, activation, head, comps = _policy_head(policy)
    n_pi = _mlp_num_params(sizes)
    if head == "gaussian":  # actions as the policy stores them (its dtype), [B, d]
        acts = np.asarray(actions, dtype=policy.dtype).reshape(B, -1).astype(np.float64)[used]
    elif head == "bernoulli":  # the bits, [B, n]
        acts = np.asarray(actions).reshape(B, -1).astype(np.int64)[used]
    else:  # one action index per categorical component, a − start
        a = np.asarray(actions).reshape(B, len(comps))
        acts = np.stack([a[:, c].astype(np.int64) - start for c, (_, _, start) in enumerate(comps)], axis=1)[used]

    def dist_rows(theta):
        """Per-row distribution parameters at θ: the network output rows, and log σ (Gaussian)."""
        y = mlp_forward(theta[:n_pi], sizes, activation, x)
        return [[float(v) for v in row] for row in y], [float(v) for v in theta[n_pi:]]

    out_old, log_std_old = dist_rows(theta_old)

    def bound(v):
        return min(max(v, _LOG_STD_MIN), _LOG_STD_MAX)

    frac = 1.0
    tries = line_search_max_iter if line_search else 1
    for j in range(tries):
        theta = theta_old + frac * np.array(full)
        out_new, log_std_new = dist_rows(theta)
        kl_sum = gain_sum = 0.0
        for i, b in enumerate(used):
            kl = logp = 0.0
            if head == "gaussian":
                for k in range(len(out_new[i])):
                    so, sn = bound(log_std_old[k]), bound(log_std_new[k])
                    mo, mn = out_old[i][k], out_new[i][k]
                    kl += sn - so + (math.exp(2 * so) + (mo - mn) ** 2) / (2 * math.exp(2 * sn)) - 0.5
                    logp += -0.5 * ((float(acts[i][k]) - mn) / math.exp(sn)) ** 2 - sn - 0.5 * math.log(2 * math.pi)
            elif head == "bernoulli":
                kl += float(bernoulli_kl([out_old[i]], [out_new[i]])[0])
                logp += float(bernoulli_log_prob([out_new[i]], [acts[i]])[0])
            else:
                for c, (o, nk, _) in enumerate(comps):
                    lp = _log_softmax(out_old[i][o : o + nk])
                    lq = _log_softmax(out_new[i][o : o + nk])
                    kl += sum(math.exp(lp[k]) * (lp[k] - lq[k]) for k in range(nk))
                    logp += lq[int(acts[i][c])]
            try:
                ratio = math.exp(logp - float(logp_old[b]))
            except OverflowError:
                ratio = math.inf
            kl_sum += w[b] * kl
            gain_sum += w[b] * (ratio - 1.0) * adv[b]
        kl, gain = kl_sum / w_sum, gain_sum / w_sum
        if trace is not None:
            trace.append((frac, kl, gain))
        finite = math.isfinite(kl) and math.isfinite(gain)
        if (finite and kl <= max_kl and gain > 0.0) if line_search else finite:
            return result(True, theta, kl, gain, j, frac * expected_full, frac, cg, 0.5 * beta * beta * sFs, "accepted")
        frac *= line_search_shrink
    return result(False, theta_old, 0.0, 0.0, tries if line_search else 0, frac / line_search_shrink * expected_full,
                  0.0, cg, 0.5 * beta * beta * sFs, "rejected")


# --- PPO's objective pieces (refrl.losses) ---
# Literal loops over one minibatch, in float64.  Ê[x] = Σ_i w_i x_i / Σ_i w_i throughout.


def normalize_advantages(advantages, weights) -> np.ndarray:
    """(A_i − Ê[A]) / (s + 1e-8), s² = Σ_i w_i (A_i − Ê[A])² / max(Σw − 1, 1), Σw taken as at least 1."""
    n = len(advantages)
    w_sum = max(sum(float(weights[i]) for i in range(n)), 1.0)
    mean = sum(float(weights[i]) * float(advantages[i]) for i in range(n)) / w_sum
    var = sum(float(weights[i]) * (float(advantages[i]) - mean) ** 2 for i in range(n)) / max(w_sum - 1.0, 1.0)
    return np.array([(float(advantages[i]) - mean) / (math.sqrt(var) + 1e-8) for i in range(n)])


def value_loss(values, v_old, returns, weights, clip_range_vf):
    """L^VF = Ê[(V − R)²], or with ε_V = clip_range_vf Ê[max((V − R)², (V_old + clip(V − V_old, −ε_V, ε_V) − R)²)]
    (ppo2 / CleanRL), and ∂L^VF/∂V_i by the chain rule through whichever term is the max."""
    n = len(values)
    w_sum = sum(float(weights[i]) for i in range(n))
    loss, grad = 0.0, np.zeros(n)
    for i in range(n):
        v, vo, r, w = float(values[i]), float(v_old[i]), float(returns[i]), float(weights[i])
        unclipped = (v - r) ** 2
        d_unclipped = 2.0 * (v - r)
        if clip_range_vf is None:
            term, d_term = unclipped, d_unclipped
        else:
            eps = float(clip_range_vf)
            delta = v - vo
            v_clipped = vo + min(max(delta, -eps), eps)
            dv_clipped_dv = 1.0 if -eps <= delta <= eps else 0.0  # clip(x) has slope 1 inside, 0 outside
            clipped = (v_clipped - r) ** 2
            d_clipped = 2.0 * (v_clipped - r) * dv_clipped_dv
            term, d_term = (clipped, d_clipped) if clipped > unclipped else (unclipped, d_unclipped)
        loss += w * term
        grad[i] = w * d_term / w_sum
    return loss / w_sum, grad


def entropy_bonus(entropy, weights, coef):
    """Ê[H] and ∂(c2·Ê[H])/∂H_i = c2 w_i / Σw."""
    n = len(entropy)
    w_sum = sum(float(weights[i]) for i in range(n))
    mean = sum(float(weights[i]) * float(entropy[i]) for i in range(n)) / w_sum
    return mean, np.array([float(coef) * float(weights[i]) / w_sum for i in range(n)])


def _log_softmax_of(z):
    """log softmax(z)_j = z_j − log Σ_k exp(z_k), shifted by max z."""
    zmax = max(z)
    lse = zmax + math.log(sum(math.exp(zj - zmax) for zj in z))
    return [zj - lse for zj in z]


def _kl_and_grad(kind: str, p_old, p_new):
    """KL[π_old ‖ π_new] of one state and ∂KL/∂p_new, for "categorical" logits, "bernoulli" logits or
    "gaussian" [μ | log σ] (log σ bounded to [−20, 2] as refrl.distributions does, with zero gradient
    beyond the bounds)."""
    k = len(p_new)
    grad = [0.0] * k
    if kind == "bernoulli":
        kl = float(bernoulli_kl([p_old], [p_new])[0])
        for j in range(k):
            grad[j] = _sigmoid(float(p_new[j])) - _sigmoid(float(p_old[j]))  # ∂KL/∂z^q_j = q_j − p_j
        return kl, grad
    if kind == "categorical":
        lp, lq = _log_softmax_of(p_old), _log_softmax_of(p_new)
        kl = sum(math.exp(lp[j]) * (lp[j] - lq[j]) for j in range(k))  # Σ p (log p − log q)
        for j in range(k):
            grad[j] = math.exp(lq[j]) - math.exp(lp[j])  # ∂/∂z^q_j of −Σ p log softmax(z^q) = q_j − p_j
        return kl, grad
    d = k // 2
    kl = 0.0
    for j in range(d):
        mo, mn = float(p_old[j]), float(p_new[j])
        so, raw = min(max(float(p_old[d + j]), -20.0), 2.0), float(p_new[d + j])
        sn = min(max(raw, -20.0), 2.0)
        var_o, var_n = math.exp(2 * so), math.exp(2 * sn)
        kl += sn - so + (var_o + (mo - mn) ** 2) / (2 * var_n) - 0.5  # KL of two 1-D normals, summed
        grad[j] = (mn - mo) / var_n
        grad[d + j] = (1.0 - (var_o + (mo - mn) ** 2) / var_n) if -20.0 <= raw <= 2.0 else 0.0
    return kl, grad


def kl_penalty_objective(logp, logp_old, advantages, weights, beta, kind, dist_params_old, dist_params):
    """L^KLPEN = Ê[r Â − β KL[π_old(·|s), π_θ(·|s)]] (Schulman et al. 2017, §4) with
    ∂L/∂log π_i = w_i r_i Â_i / Σw and ∂L/∂q_i = −β w_i ∂KL_i/∂q_i / Σw.

    Returns (objective, surrogate Ê[r Â], Ê[KL], grad_logp [B], grad_dist_params [B, P])."""
    n = len(logp)
    w_sum = sum(float(weights[i]) for i in range(n))
    surrogate = kl_mean = 0.0
    grad_logp = np.zeros(n)
    grad_dist = np.zeros((n, len(dist_params[0])))
    for i in range(n):
        w = float(weights[i])
        r = math.exp(float(logp[i]) - float(logp_old[i]))
        surrogate += w * r * float(advantages[i]) / w_sum
        grad_logp[i] = w * r * float(advantages[i]) / w_sum  # ∂r/∂log π = r
        kl_i, dkl_i = _kl_and_grad(kind, [float(x) for x in dist_params_old[i]], [float(x) for x in dist_params[i]])
        kl_mean += w * kl_i / w_sum
        for j in range(len(dkl_i)):
            grad_dist[i, j] = -float(beta) * w * dkl_i[j] / w_sum
    return surrogate - float(beta) * kl_mean, surrogate, kl_mean, grad_logp, grad_dist
