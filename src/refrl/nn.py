"""Manual-gradient multilayer perceptron on one flat parameter vector.

CS231n style: ``forward(x) -> (y, cache)`` and ``backward(dy, cache)``, with the
gradient of the parameters *accumulated* (``+=``) into a flat gradient vector.
No autodiff: every derivative below is derived by hand and checked against
central finite differences in ``tests/test_nn.py``.

Flat layout (binding for the native code in ``cpp/include/refrl/mlp.hpp`` and
``fisher.hpp``): for an MLP with sizes ``(d0, d1, ..., dL)``, for each layer
``l = 1..L`` in order, ``W_l`` row-major with shape ``[d_{l-1}, d_l]`` (so that
``z_l = h_{l-1} @ W_l + b_l``), followed by ``b_l`` with shape ``[d_l]``.
Hidden layers apply the activation (``tanh`` by default, as in the PPO paper's
MuJoCo setup, or ``relu``); the output layer is linear.

Maths (h_0 = x, φ the activation, L layers)::

    z_l = h_{l-1} W_l + b_l,   h_l = φ(z_l) (l < L),   y = z_L
    backward (δ_l = ∂loss/∂z_l, δ_L = dy):
        ∂loss/∂W_l = h_{l-1}ᵀ δ_l,   ∂loss/∂b_l = Σ_batch δ_l
        ∂loss/∂h_{l-1} = δ_l W_lᵀ,   δ_{l-1} = ∂loss/∂h_{l-1} ⊙ φ'(z_{l-1})
        φ = tanh: φ'(z) = 1 − h²;   φ = relu: φ'(z) = 1[h > 0]
    forward-mode R-operator (Pearlmutter 1994) along parameter direction v = (V_l, c_l):
        R{h_0} = 0
        R{z_l} = R{h_{l-1}} W_l + h_{l-1} V_l + c_l,   R{h_l} = φ'(z_l) ⊙ R{z_l}
        J v = R{z_L}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["MLP", "orthogonal_"]

_ACTIVATIONS = ("tanh", "relu")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def orthogonal_(out: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Fill the 2-D array ``out`` in place with a (semi-)orthogonal matrix times ``gain``.

    Saxe et al. (2014), as in ``torch.nn.init.orthogonal_``: draw A ~ N(0, 1) of the larger
    orientation, take A = QR, fix the signs with sign(diag R) so Q is Haar-distributed.
    For ``out`` of shape [n_in, n_out] the result has orthonormal columns when n_in >= n_out
    (WᵀW = gain²·I) and orthonormal rows otherwise (WWᵀ = gain²·I).
    The random draw is done in float64 and then cast, so float32 and float64 networks built
    from the same seed start from the same weights (up to rounding).
    """
    rows, cols = out.shape
    if rows == 0 or cols == 0:
        return out
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q *= d
    if rows < cols:
        q = q.T
    out[...] = gain * q
    return out


class MLP:
    """Fully connected network ``(d0, d1, ..., dL)``: hidden activation, linear output.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including input and output, at least two entries, each >= 1.
    activation : {"tanh", "relu"}
        Hidden-layer non-linearity.
    hidden_gain, output_gain : float
        Orthogonal-init gains: √2 for hidden layers, the caller chooses the output gain
        (0.01 for a policy head, 1 for a value head; "37 implementation details", core detail 2).
    ortho_init : bool
        Orthogonal weights and zero biases if True; otherwise PyTorch's ``nn.Linear`` default
        (W, b ~ U(−1/√fan_in, 1/√fan_in)).
    dtype : np.float32 or np.float64
    rng : np.random.Generator
        Used only for the initialisation.
    params, grads : 1-D arrays of length ``MLP.num_params(sizes)`` and dtype ``dtype``, optional
        Storage to use (typically views into a larger flat vector owned by a policy). They are
        used as given, never copied; ``params`` is overwritten by the initialisation unless
        ``init=False``. When omitted, fresh zero vectors are allocated.
    init : bool
        Initialise ``params`` (default True).

    Attributes
    ----------
    params, grads : 1-D views; ``W[l]``, ``b[l]``, ``dW[l]``, ``db[l]`` per-layer views into them.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "tanh",
        *,
        hidden_gain: float = math.sqrt(2.0),
        output_gain: float = 1.0,
        ortho_init: bool = True,
        dtype: type | np.dtype = np.float32,
        rng: np.random.Generator,
        params: np.ndarray | None = None,
        grads: np.ndarray | None = None,
        init: bool = True,
    ) -> None:
        self.sizes = _check_sizes(sizes)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: 'activation' must be one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        dt = np.dtype(dtype)
        if dt not in _DTYPES:
            raise TypeError(f"MLP: 'dtype' must be float32 or float64, got {dt}")
        self.dtype = dt
        n = MLP.num_params(self.sizes)
        self.params = self._storage(params, n, "params")
        self.grads = self._storage(grads, n, "grads")
        if grads is None:
            self.grads.fill(0)
        if params is not None and grads is not None and np.shares_memory(self.params, self.grads):
            raise ValueError("MLP: 'params' and 'grads' must not overlap")
        self._offsets = _layer_offsets(self.sizes)
        self.W, self.b = self._views(self.params)
        self.dW, self.db = self._views(self.grads)
        self._relu = activation == "relu"
        self._ones_cache: dict[int, np.ndarray] = {}
        if init:
            if not isinstance(rng, np.random.Generator):
                raise TypeError(f"MLP: 'rng' must be a numpy.random.Generator, got {type(rng).__name__}")
            self.init_params(rng, hidden_gain=hidden_gain, output_gain=output_gain, ortho_init=ortho_init)

    # ----------------------------------------------------------------------------------- layout
    @staticmethod
    def num_params(sizes: Sequence[int]) -> int:
        """Σ_l (d_{l-1}·d_l + d_l): the length of the flat parameter vector."""
        s = _check_sizes(sizes)
        return sum(a * b + b for a, b in itertools.pairwise(s))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def num_parameters(self) -> int:
        return self.params.size

    def layer_slices(self) -> list[tuple[slice, slice]]:
        """(slice of W_l, slice of b_l) in the flat vector, for each layer."""
        return [(slice(w0, w1), slice(w1, b1)) for w0, w1, b1 in self._offsets]

    def _storage(self, arr: np.ndarray | None, n: int, name: str) -> np.ndarray:
        if arr is None:
            return np.zeros(n, dtype=self.dtype)
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"MLP: '{name}' must be a numpy array, got {type(arr).__name__}")
        if arr.dtype != self.dtype:
            raise TypeError(f"MLP: '{name}' must have dtype {self.dtype}, got {arr.dtype}")
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"MLP: '{name}' must have shape ({n},), got {arr.shape}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"MLP: '{name}' must be C-contiguous (a view of a flat vector)")
        if not arr.flags.writeable:
            raise ValueError(f"MLP: '{name}' must be writeable")
        return arr

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        Ws, bs = [], []
        for (w0, w1, b1), d_in, d_out in zip(self._offsets, self.sizes[:-1], self.sizes[1:], strict=True):
            Ws.append(flat[w0:w1].reshape(d_in, d_out))
            bs.append(flat[w1:b1])
        return Ws, bs

    def set_params(self, theta: np.ndarray) -> None:
        """Copy ``theta`` into the flat parameter storage in place (views stay valid)."""
        theta = np.asarray(theta)
        if theta.shape != self.params.shape:
            raise ValueError(f"MLP.set_params: 'theta' must have shape {self.params.shape}, got {theta.shape}")
        self.params[...] = theta

    def zero_grad(self) -> None:
        self.grads.fill(0)

    def init_params(
        self,
        rng: np.random.Generator,
        *,
        hidden_gain: float = math.sqrt(2.0),
        output_gain: float = 1.0,
        ortho_init: bool = True,
    ) -> None:
        """(Re)initialise in place: orthogonal W with gain (√2 hidden, ``output_gain`` last), b = 0."""
        L = self.n_layers
        for l, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            if ortho_init:
                tmp = np.empty(W.shape, dtype=np.float64)
                orthogonal_(tmp, output_gain if l == L - 1 else hidden_gain, rng)
                W[...] = tmp
                b.fill(0)
            else:
                bound = 1.0 / math.sqrt(W.shape[0])
                W[...] = rng.uniform(-bound, bound, size=W.shape)
                b[...] = rng.uniform(-bound, bound, size=b.shape)

    # ---------------------------------------------------------------------------------- compute
    def _check_x(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"MLP: '{name}' must have shape (B, {self.sizes[0]}), got {x.shape}")
        return x

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """y = MLP(x).

        Parameters
        ----------
        x : ndarray, shape [B, d0] (converted to ``dtype``)

        Returns
        -------
        y : ndarray, shape [B, dL]
        cache : list of the layer inputs [h_0, h_1, ..., h_{L-1}] (for ``backward``/``jvp_from_cache``)
        """
        h = self._check_x(x)
        cache = [h]
        last = self.n_layers - 1
        relu = self._relu
        for l in range(self.n_layers):
            z = h @ self.W[l]
            z += self.b[l]
            if l < last:
                if relu:
                    np.maximum(z, 0, out=z)
                else:
                    np.tanh(z, out=z)
                cache.append(z)
            h = z
        return h, cache

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def _ones(self, B: int) -> np.ndarray:
        """A cached read-only vector of B ones (the bias gradient's batch sum, as a GEMV)."""
        ones = self._ones_cache.get(B)
        if ones is None:
            ones = np.ones(B, dtype=self.dtype)
            ones.flags.writeable = False
            if len(self._ones_cache) > 8:  # a few batch sizes are in use at a time
                self._ones_cache.clear()
            self._ones_cache[B] = ones
        return ones

    def _dact(self, h: np.ndarray) -> np.ndarray:
        """φ'(z) expressed through h = φ(z)."""
        if self._relu:
            return (h > 0).astype(self.dtype)
        return 1.0 - h * h

    def backward(
        self,
        dy: np.ndarray,
        cache: list[np.ndarray],
        *,
        out: np.ndarray | None = None,
        need_dx: bool = True,
        accumulate: bool = True,
    ) -> np.ndarray | None:
        """Reverse mode: accumulate ∂loss/∂θ into ``grads`` (or ``out``) and return ∂loss/∂x.

        Parameters
        ----------
        dy : ndarray, shape [B, dL]
            ∂loss/∂y.
        cache : from ``forward`` at the same parameters.
        out : 1-D array like ``grads``, optional
            Flat vector to accumulate into instead of ``self.grads`` (e.g. a Jᵀu product).
        need_dx : bool
            Skip the last matmul when the input gradient is not needed (returns None).
        accumulate : bool
            False: overwrite the target with ∂loss/∂θ instead of adding to it (the same values
            as zeroing it first; saves the zeroing and one addition per array).

        Returns
        -------
        dx : ndarray, shape [B, d0], or None
        """
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
        ones = self._ones(B)
        for l in range(self.n_layers - 1, -1, -1):
            h_prev = cache[l]
            if accumulate:
                dWs[l] += h_prev.T @ delta
                dbs[l] += ones @ delta  # Σ_batch δ_l as a GEMV: ~3x faster than delta.sum(axis=0) here
            else:
                np.matmul(h_prev.T, delta, out=dWs[l])
                np.matmul(ones, delta, out=dbs[l])
            if l == 0 and not need_dx:
                return None
            W = self.W[l]
            # δ Wᵀ; with one output column it is an outer product: broadcasting gives the same
            # products (no sums) at half the cost of a k = 1 matmul (value heads, 1-D Gaussians)
            dh = delta * W.T if W.shape[1] == 1 else delta @ W.T
            if l > 0:
                if self._relu:
                    dh *= self._dact(h_prev)
                else:  # dh *= 1 − h², with one temporary instead of two (same float ops)
                    tmp = np.multiply(h_prev, h_prev)
                    np.subtract(1.0, tmp, out=tmp)
                    dh *= tmp
            delta = dh
        return delta

    def jvp_from_cache(self, cache: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        """R-operator J·v along the flat parameter direction ``v``, reusing ``forward``'s cache.

        Returns Jv, shape [B, dL]: the directional derivative of y w.r.t. θ along v.
        """
        if len(cache) != self.n_layers or cache[0].shape[1] != self.sizes[0]:
            raise ValueError("MLP.jvp: 'cache' does not come from this network's forward")
        v = np.asarray(v, dtype=self.dtype)
        if v.shape != self.params.shape:
            raise ValueError(f"MLP.jvp: 'v' must have shape {self.params.shape}, got {v.shape}")
        Vs, cs = self._views(v)
        r = None  # R{h_{l-1}}; R{h_0} = 0
        for l in range(self.n_layers):
            h_prev = cache[l]
            rz = h_prev @ Vs[l]
            rz += cs[l]
            if r is not None:
                rz += r @ self.W[l]
            if l < self.n_layers - 1:
                rz *= self._dact(cache[l + 1])
            r = rz
        return r

    def jvp(self, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward pass and J·v: returns (y [B, dL], Jv [B, dL])."""
        y, cache = self.forward(x)
        return y, self.jvp_from_cache(cache, v)

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes}, activation={self.activation!r}, dtype={self.dtype.name})"


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        s = tuple(int(d) for d in sizes)
        ok = all(int(d) == d for d in sizes)
    except (TypeError, ValueError):
        raise TypeError(f"MLP: 'sizes' must be a sequence of ints, got {sizes!r}") from None
    if not ok or len(s) < 2 or any(d < 1 for d in s):
        raise ValueError(f"MLP: 'sizes' must hold at least two positive ints (input, ..., output), got {sizes!r}")
    return s


def _layer_offsets(sizes: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(start of W_l, start of b_l, end of b_l) for each layer."""
    offs, o = [], 0
    for d_in, d_out in itertools.pairwise(sizes):
        w1 = o + d_in * d_out
        offs.append((o, w1, w1 + d_out))
        o = w1 + d_out
    return offs
