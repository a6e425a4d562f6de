"""Argument checking shared by refrl's checked entry points (refrl.kernels, refrl.native).

Each check either returns the argument in the form the compiled core takes (a C-contiguous
array of the right dtype, a Python float or int) or raises a ``TypeError`` / ``ValueError``
whose message names the calling function and the argument, so that errors read the same
everywhere. The module is private to the package; its functions are public within it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "INT64_MAX", "adam_overflow_message", "adam_step_or_restore", "as_array", "as_flags", "as_float_array",
    "as_real_array", "as_weights", "check_adam", "check_bool", "check_cg_system", "check_damping", "check_finite",
    "check_fits", "check_inplace_array", "check_scalar", "checked_operator", "checked_product", "first_non_finite",
    "fmt_shape", "gae_non_finite_message", "raise_bad_weights", "surrogate_non_finite_message",
]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOAT_DTYPES = (_F32, _F64)
_BOOL = np.dtype(np.bool_)
_INF = float("inf")


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``shape`` as a tuple of Python ints, for messages: ``(3, 4)``."""
    return str(tuple(int(s) for s in shape))


def as_array(x: Any, name: str, fn: str) -> np.ndarray:
    """``x`` as an ndarray (no copy when it is one); TypeError for None, ValueError if not convertible."""
    if x is None:
        raise TypeError(f"{fn}: '{name}' must be an array, got None")
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested sequences etc.
        raise ValueError(f"{fn}: '{name}' could not be converted to an array ({exc})") from exc
    return arr


def as_float_array(
    x: Any,
    name: str,
    *,
    fn: str,
    ndim: int | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: np.dtype | type | None = None,
    shape_desc: str = "",
) -> np.ndarray:
    """Check ``x`` and return it as a C-contiguous native float32/float64 array.

    Parameters
    ----------
    x : array_like
        The argument.
    name, fn : str
        Argument and function names used in error messages.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple of int, optional
        Required exact shape (implies ``ndim``).
    dtype : float32 or float64, optional
        Target dtype: any floating ``x`` is converted to it. Without it, ``x`` must already
        be float32 or float64 and keeps its dtype (it is the argument that decides).
    shape_desc : str
        Symbolic shape for messages, e.g. ``"(T, N)"``.

    Raises
    ------
    TypeError
        ``x`` is None, or its dtype is not floating (int, bool, complex, object, str) or,
        without ``dtype``, not float32/float64.
    ValueError
        Wrong number of dimensions or shape, or ``x`` cannot be made into an array.
    """
    # fast path (the common case, a few hundred ns): already a C-contiguous array of the dtype
    if type(x) is np.ndarray and x.flags.c_contiguous:
        dt = x.dtype
        if (dt is _F64 or dt is _F32) if dtype is None else dt == dtype:
            if (x.shape == shape) if shape is not None else (ndim is None or x.ndim == ndim):
                return x
    arr = as_array(x, name, fn)
    kind = arr.dtype.kind
    if kind != "f":
        raise TypeError(f"{fn}: '{name}' must be a float32 or float64 array, got dtype {arr.dtype}")
    if dtype is None:
        if arr.dtype.newbyteorder("=") not in _FLOAT_DTYPES:
            raise TypeError(f"{fn}: '{name}' must be float32 or float64, got dtype {arr.dtype}")
        target = arr.dtype.newbyteorder("=")
    else:
        target = np.dtype(dtype)
    if shape is not None:
        if arr.shape != tuple(shape):
            desc = f"{shape_desc}=" if shape_desc else ""
            raise ValueError(f"{fn}: '{name}' must have shape {desc}{fmt_shape(shape)}, got {fmt_shape(arr.shape)}")
    elif ndim is not None and arr.ndim != ndim:
        desc = f" {shape_desc}" if shape_desc else ""
        raise ValueError(f"{fn}: '{name}' must be {ndim}-D{desc}, got shape {fmt_shape(arr.shape)}")
    # one explicit, documented copy at most: dtype / byte order / contiguity
    if arr.dtype.itemsize <= target.itemsize:
        return np.ascontiguousarray(arr, dtype=target)
    try:  # narrowing float64 -> float32: values beyond float32's range are an error, not inf
        with np.errstate(over="raise"):
            return np.ascontiguousarray(arr, dtype=target)
    except FloatingPointError:
        raise ValueError(f"{fn}: '{name}' has values outside the {target} range") from None


def as_flags(x: Any, name: str, *, fn: str, shape: tuple[int, ...], shape_desc: str = "") -> np.ndarray:
    """Check a boolean flag array and return it as a C-contiguous ``uint8`` array (0/1).

    bool arrays are reinterpreted without a copy (when contiguous); integer or float arrays
    are accepted when every entry is 0 or 1. Anything else raises ``TypeError``.
    """
    if type(x) is np.ndarray and x.dtype is _BOOL and x.flags.c_contiguous and x.shape == shape:
        return x.view(np.uint8)  # fast path: a contiguous bool array of the right shape
    arr = as_array(x, name, fn)
    if arr.shape != tuple(shape):
        desc = f"{shape_desc}=" if shape_desc else ""
        raise ValueError(f"{fn}: '{name}' must have shape {desc}{fmt_shape(shape)}, got {fmt_shape(arr.shape)}")
    kind = arr.dtype.kind
    if kind == "b":
        return np.ascontiguousarray(arr).view(np.uint8)
    if kind in "iuf":
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{fn}: '{name}' must be boolean (or 0/1), got values other than 0 and 1")
        return (arr != 0).view(np.uint8)
    raise TypeError(f"{fn}: '{name}' must be a bool array (or 0/1 numbers), got dtype {arr.dtype}")


INT64_MAX = 2**63 - 1  # the compiled core takes integers as 64-bit C integers


def check_scalar(
    name: str,
    value: Any,
    *,
    fn: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> float | int:
    """Check a real (or, with ``integer=True``, integral) finite scalar within [lo, hi].

    ``lo_open`` / ``hi_open`` exclude the bound. Returns a Python float (or int). Python and
    numpy numbers are accepted; bool is rejected (``gamma=True`` is a bug, not 1.0), and so are
    complex numbers. An integer is at most ``INT64_MAX`` (what the compiled core takes) unless
    ``hi`` says otherwise; a float must be finite (an int too large for a float is not).
    Raises ``TypeError`` for a non-number and ``ValueError`` for NaN, inf or a value out of range.
    """
    if type(value) is float and not integer:  # fast path for the common case
        if value == value and value not in (_INF, -_INF):
            if (lo is None or (value > lo if lo_open else value >= lo)) and (
                hi is None or (value < hi if hi_open else value <= hi)
            ):
                return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: '{name}' must be {'an integer' if integer else 'a real number'}, got bool")
    if integer:
        if not isinstance(value, (numbers.Integral, np.integer)):
            raise TypeError(f"{fn}: '{name}' must be an integer, got {type(value).__name__}")
        out: float | int = int(value)
        if hi is None:
            hi = INT64_MAX
    else:
        if not isinstance(value, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"{fn}: '{name}' must be a real number, got {type(value).__name__}")
        try:
            out = float(value)
        except OverflowError:  # an int beyond float's range
            digits = len(str(abs(int(value))))
            raise ValueError(f"{fn}: '{name}' must be finite, got an integer of {digits} digits") from None
        if not np.isfinite(out):
            raise ValueError(f"{fn}: '{name}' must be finite, got {out}")
    if lo is not None and (out < lo or (lo_open and out == lo)):
        raise ValueError(f"{fn}: '{name}' must be {'>' if lo_open else '>='} {lo}, got {out}")
    if hi is not None and (out > hi or (hi_open and out == hi)):
        raise ValueError(f"{fn}: '{name}' must be {'<' if hi_open else '<='} {hi}, got {out}")
    return out


def check_bool(name: str, value: Any, *, fn: str) -> bool:
    """A flag: ``bool`` or ``numpy.bool_`` (``1`` or ``"yes"`` are refused, not read as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: '{name}' must be a bool, got {type(value).__name__}")
    return bool(value)


def check_fits(name: str, value: float, *, fn: str, dtype: np.dtype, nonzero: bool = False) -> float:
    """A checked float scalar that the kernel rounds to ``dtype``: it must not overflow to inf
    there (nor, with ``nonzero``, underflow to 0). Returns ``value``."""
    dtype = np.dtype(dtype)
    if abs(value) > float(np.finfo(dtype).max):
        raise ValueError(f"{fn}: '{name}' = {value:g} overflows {dtype} (max {float(np.finfo(dtype).max):.3g})")
    if nonzero and value != 0.0 and dtype.type(value) == 0:
        raise ValueError(f"{fn}: '{name}' = {value:g} underflows to 0 in {dtype}")
    return value


def check_finite(x: np.ndarray, name: str, fn: str) -> np.ndarray:
    """``x`` (a float array) holds no NaN or inf; the message gives the first bad index."""
    if not np.isfinite(x).all():
        raise ValueError(first_non_finite(fn, [(name, x)]))
    return x


def as_real_array(x: Any, name: str, fn: str) -> np.ndarray:
    """``x`` as an array of real numbers (bool, integer or float): complex, str and object
    arrays raise ``TypeError`` (their conversion to float would drop or fail silently)."""
    arr = as_array(x, name, fn)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: '{name}' must be a real numeric array, got dtype {arr.dtype}")
    return arr


def first_non_finite(fn: str, named: list[tuple[str, np.ndarray]], where: np.ndarray | None = None) -> str | None:
    """Name of the first array in ``named`` holding NaN or inf (only where ``where``), or None."""
    for name, arr in named:
        bad = ~np.isfinite(arr)
        if where is not None:
            bad &= where
        if bad.any():
            return f"{fn}: '{name}' contains NaN or inf (at index {np.argwhere(bad)[0].tolist()})"
    return None


def raise_bad_weights(fn: str, weights: np.ndarray) -> None:
    """Raise the ValueError naming what is wrong with per-sample ``weights`` that a kernel reported
    invalid (NaN/inf, negative, a sum that overflows, all zero)."""
    if not np.isfinite(weights).all():
        raise ValueError(f"{fn}: 'weights' contains NaN or inf")
    if (weights < 0).any():
        raise ValueError(f"{fn}: 'weights' must be >= 0, got min {weights.min()}")
    with np.errstate(over="ignore"):
        total = float(weights.sum(dtype=np.float64))
    if not np.isfinite(total):
        raise ValueError(f"{fn}: 'weights' sum overflows")
    raise ValueError(f"{fn}: 'weights' must not all be zero (the objective is a weighted mean)")


def gae_non_finite_message(fn: str, rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                           term: np.ndarray) -> str:
    """Why GAE's outputs are not finite: the first input holding NaN/inf where it is read, or overflow."""
    msg = first_non_finite(fn, [("rewards", rewards), ("values", values)])
    if msg is None:  # next_values is read only where the step did not terminate
        msg = first_non_finite(fn, [("next_values", next_values)], where=term == 0)
    return msg or f"{fn}: the advantages overflowed {rewards.dtype} (inputs are finite but too large)"


def as_weights(weights: Any, *, fn: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Per-sample weights [B] as a C-contiguous array of ``dtype``: a bool mask (0/1) or floats.
    Their values (>= 0, finite, not all zero) are checked by the kernel's summing pass."""
    w_arr = as_array(weights, "weights", fn)
    if w_arr.dtype.kind != "b":
        return as_float_array(w_arr, "weights", fn=fn, shape=shape, dtype=dtype, shape_desc="(B,)")
    if w_arr.shape != shape:
        raise ValueError(f"{fn}: 'weights' must have shape (B,)={fmt_shape(shape)}, got {fmt_shape(w_arr.shape)}")
    return w_arr.astype(dtype)  # C-contiguous 0/1 copy


def surrogate_non_finite_message(fn: str, logp: np.ndarray, logp_old: np.ndarray, advantages: np.ndarray,
                                 weights: np.ndarray | None) -> str:
    """Why the clipped surrogate is not finite: NaN/inf in an input where w != 0, or exp overflow."""
    used = None if weights is None else weights != 0
    msg = first_non_finite(fn, [("logp", logp), ("logp_old", logp_old), ("advantages", advantages)], where=used)
    if msg is not None:
        return msg
    log_ratio = (logp.astype(np.float64) - logp_old)[used if used is not None else slice(None)]
    return (f"{fn}: exp(logp - logp_old) overflows {logp.dtype} (log-ratios range "
            f"[{log_ratio.min():.3g}, {log_ratio.max():.3g}]); the policy moved too far from logp_old")


def check_cg_system(operator: Any, b: Any, native_dtype: np.dtype | None, *, fn: str) -> np.ndarray:
    """The operator (a callable, or a native operator of ``native_dtype``) and the right-hand side
    of a CG solve; returns ``b`` as a finite C-contiguous float vector of the solve's dtype."""
    if native_dtype is None and not callable(operator):
        raise TypeError(f"{fn}: 'operator' must be a callable v -> A v or a refrl._core.LinearOperatorF32/F64, "
                        f"got {type(operator).__name__}")
    if native_dtype is not None:
        b = as_float_array(b, "b", fn=fn, shape=(operator.size,), dtype=native_dtype, shape_desc="(operator.size,)")
    else:
        b = as_float_array(b, "b", fn=fn, ndim=1, shape_desc="[n]")
    return check_finite(b, "b", fn)


def check_inplace_array(x: Any, name: str, fn: str, like: np.ndarray, *, writeable: bool) -> np.ndarray:
    """``x`` must already be a C-contiguous array of ``like``'s dtype and shape (it is updated in
    place or read as is, never copied); ``writeable``: it must be writeable too."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: '{name}' must be a numpy array, got {type(x).__name__}")
    if x.dtype != like.dtype:
        raise TypeError(f"{fn}: '{name}' must have dtype {like.dtype} (that of 'params'), got {x.dtype}")
    if x.shape != like.shape:
        raise ValueError(f"{fn}: '{name}' must have shape {fmt_shape(like.shape)}, got {fmt_shape(x.shape)}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{fn}: '{name}' must be C-contiguous (it is updated in place, never copied)")
    if writeable and not x.flags.writeable:
        raise ValueError(f"{fn}: '{name}' must be writeable (it is updated in place)")
    return x


def checked_operator(operator: Callable[[np.ndarray], np.ndarray], n: int, dtype: np.dtype, fn: str):
    """Wrap a Python operator ``v -> A v`` so that each result is checked: a float array of shape
    [n] with finite values, returned C-contiguous in ``dtype``; errors name the call number."""
    calls = [0]

    def checked_apply(v: np.ndarray) -> np.ndarray:
        calls[0] += 1
        out = operator(v)
        if out is None:
            raise TypeError(f"{fn}: 'operator' must return a float array, got None (call {calls[0]})")
        arr = as_array(out, "operator", fn)
        if arr.dtype.kind != "f":
            raise TypeError(f"{fn}: 'operator' must return a float array, got dtype {arr.dtype} (call {calls[0]})")
        if arr.shape != (n,):
            raise ValueError(
                f"{fn}: 'operator' must return shape {fmt_shape((n,))} like 'b', got {fmt_shape(arr.shape)} "
                f"(call {calls[0]})"
            )
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if not np.isfinite(arr).all():
            raise ValueError(f"{fn}: 'operator' returned NaN or inf (call {calls[0]})")
        return arr

    return checked_apply


# ---------------------------------------------------------------------------------------------
# Adam: the arguments, and the in-place step's outputs


def check_adam(params: Any, grads: Any, m: Any, v: Any, t: Any, lr: Any, beta1: Any, beta2: Any, eps: Any,
               *, fn: str) -> tuple[int, float, float, float, float]:
    """Every argument of an Adam step; returns ``(t, lr, beta1, beta2, eps)`` as Python numbers.

    The arrays must be 1-D, C-contiguous, of one float dtype (that of ``params``) and shape, and
    finite, with ``v >= 0`` (a second moment; √v of a negative one is NaN). The scalars must be
    in range and survive the rounding to that dtype: ``lr``, ``eps`` and the bias-corrected step
    scale ``lr / (1 - beta1^t)`` finite there, ``eps`` not rounded to 0 (0/0 where g = m = v = 0).
    """
    if not isinstance(params, np.ndarray):
        raise TypeError(f"{fn}: 'params' must be a numpy array, got {type(params).__name__}")
    if params.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{fn}: 'params' must be float32 or float64, got dtype {params.dtype}")
    if params.ndim != 1:
        raise ValueError(f"{fn}: 'params' must be 1-D [P], got shape {fmt_shape(params.shape)}")
    for name, arr, writeable in (("params", params, True), ("grads", grads, False), ("m", m, True), ("v", v, True)):
        check_inplace_array(arr, name, fn, params, writeable=writeable)
    for name, arr in (("params", params), ("grads", grads), ("m", m), ("v", v)):
        check_finite(arr, name, fn)
    if v.size and v.min() < 0:
        raise ValueError(f"{fn}: 'v' must be >= 0 (a second moment), got min {v.min()}")
    dtype = params.dtype
    t = check_scalar("t", t, fn=fn, lo=1, integer=True)
    lr = check_fits("lr", check_scalar("lr", lr, fn=fn, lo=0.0), fn=fn, dtype=dtype)
    beta1 = check_scalar("beta1", beta1, fn=fn, lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_scalar("beta2", beta2, fn=fn, lo=0.0, hi=1.0, hi_open=True)
    eps = check_fits("eps", check_scalar("eps", eps, fn=fn, lo=0.0, lo_open=True), fn=fn, dtype=dtype, nonzero=True)
    scale = lr / (1.0 - beta1**t)
    if scale > float(np.finfo(dtype).max):
        raise ValueError(f"{fn}: 'lr' / (1 - beta1^t) = {scale:.3g} overflows {dtype} (the bias-corrected step size)")
    return t, lr, beta1, beta2, eps


def adam_overflow_message(fn: str, grads: np.ndarray, overflowed: str) -> str:
    """Why an Adam step on finite, checked inputs overflowed ``overflowed`` ('params', 'm' or 'v')."""
    dtype = grads.dtype
    root_max = float(np.sqrt(np.finfo(dtype).max))
    g_max = float(np.max(np.abs(grads), initial=0.0))
    if g_max > root_max:
        return (f"{fn}: 'grads' too large for {dtype}: g² overflows (max |g| = {g_max:.3g} > {root_max:.3g}); "
                "scale the loss down or use float64")
    if overflowed != "params":
        return f"{fn}: the moment '{overflowed}' overflows {dtype} (max |g| = {g_max:.3g})"
    return (f"{fn}: the update of 'params' overflows {dtype}: the step lr·m̂/(√v̂ + eps) is too large for "
            "these 'params', 'm' and 'v' (lower 'lr' or raise 'eps')")


def adam_step_or_restore(step: Callable[[], None], fn: str, params: np.ndarray, grads: np.ndarray, m: np.ndarray,
                         v: np.ndarray) -> None:
    """Run ``step()`` (an Adam step in place on ``params``, ``m``, ``v``) and keep its result only if
    all three stay finite; otherwise restore them and raise ``OverflowError`` naming the cause
    (:func:`adam_overflow_message`). A refused step writes nothing."""
    saved = (params.copy(), m.copy(), v.copy())
    step()
    finite = {"v": np.isfinite(v).all(), "m": np.isfinite(m).all(), "params": np.isfinite(params).all()}
    if not all(finite.values()):
        for arr, old in zip((params, m, v), saved, strict=True):
            arr[...] = old
        raise OverflowError(adam_overflow_message(fn, grads, next(k for k, ok in finite.items() if not ok)))


# ---------------------------------------------------------------------------------------------
# native linear operators: the vector of a product, the product, the damping


def checked_product(apply: Callable[[np.ndarray], np.ndarray], v: Any, *, size: int, dtype: np.dtype, damping: float,
                    fn: str) -> np.ndarray:
    """``apply(v)`` (= F v + damping·v of a native operator of ``size`` and ``dtype``) for a checked
    ``v``: any float array of shape [size], finite, converted to ``dtype`` (int, bool, complex, str
    and object arrays raise ``TypeError``). A product that overflows ``dtype`` raises ``OverflowError``."""
    v = check_finite(as_float_array(v, "v", fn=fn, shape=(size,), dtype=dtype, shape_desc="(op.size,)"), "v", fn)
    out = apply(v)
    if not np.isfinite(out).all():
        v_max = float(np.max(np.abs(v), initial=0.0))
        raise OverflowError(f"{fn}: F v + damping·v overflows {np.dtype(dtype)} ('damping' = {damping:g}, "
                            f"max |'v'| = {v_max:.3g}): scale 'v' down")
    return out


def check_damping(value: Any, *, fn: str, dtype: np.dtype) -> float:
    """A damping λ >= 0 added to an operator's diagonal in ``dtype``: finite there."""
    return check_fits("damping", check_scalar("damping", value, fn=fn, lo=0.0), fn=fn, dtype=dtype)
