#pragma once
// Conjugate gradient for (A + damping I) x = b with A symmetric positive definite, x_0 = 0.
// Hestenes & Stiefel (1952); the loop of Demmel, "Applied Numerical Linear Algebra",
// Alg. 6.11, as used for TRPO's natural-gradient step (Schulman et al. 2015, App. C):
//   r_0 = p_0 = b
//   alpha_k = r_k^T r_k / p_k^T (A + damping I) p_k
//   x_{k+1} = x_k + alpha_k p_k,   r_{k+1} = r_k - alpha_k (A + damping I) p_k
//   beta_k  = r_{k+1}^T r_{k+1} / r_k^T r_k,   p_{k+1} = r_{k+1} + beta_k p_k
// Stops when r^T r <= tol (the squared residual, as OpenAI baselines and sb3-contrib do, so
// their default tol = 1e-10 means the same here) or r^T r falls below the smallest normal
// number (exact convergence in floating point: going on would only underflow), after max_iters operator applications, or
// when the curvature p^T (A + damping I) p is not positive (A is not positive definite) or
// not finite. r is the recursively updated residual (no extra operator application).
// No Python, no third-party headers, no exceptions thrown by this code itself.
#include <cmath>
#include <limits>
#include <vector>

#include "refrl/common.hpp"

namespace refrl {

enum class CGStatus : int {
  converged = 0,              // r^T r <= tol (or r^T r < the smallest normal T)
  max_iterations = 1,         // iteration cap reached with r^T r > tol
  not_positive_definite = 2,  // p^T (A + damping I) p <= 0: stopped before using p
  non_finite = 3,             // NaN or inf in b, A p, or the iteration
  operator_failed = 4,        // the apply callback returned false (e.g. a Python error)
};

template <class T>
struct CGInfo {
  Index iterations;  // number of completed updates of x (= operator applications used)
  T residual_norm;   // sqrt(r^T r) of the returned x
  CGStatus status;
};

namespace detail {
template <class T>
inline T dot(Index n, const T* a, const T* b) {
  // two accumulators: fewer dependent adds, and still deterministic for a given n
  T s0 = T(0), s1 = T(0);
  Index i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
  }
  if (i < n) s0 += a[i] * b[i];
  return s0 + s1;
}
}  // namespace detail

// apply(const T* v, T* out) -> bool computes out = A v (v has n entries and does not alias
// out); returning false aborts with CGStatus::operator_failed and the last good x.
// work must hold 3 n values. out_x receives the solution (n values).
template <class T, class Apply>
CGInfo<T> conjugate_gradient(Apply&& apply, Index n, const T* b, Index max_iters, T tol, T damping,
                             T* out_x, T* work) {
  static_assert(is_real_v<T>, "refrl::conjugate_gradient is defined for float and double");
  T* r = work;
  T* p = work + n;
  T* Ap = work + 2 * n;
  for (Index i = 0; i < n; ++i) {
    out_x[i] = T(0);
    r[i] = b[i];
    p[i] = b[i];
  }
  const T tiny = std::numeric_limits<T>::min();
  T rr = detail::dot(n, r, r);
  if (!std::isfinite(rr)) return {0, std::sqrt(rr), CGStatus::non_finite};
  if (rr <= tol || rr < tiny) return {0, std::sqrt(rr), CGStatus::converged};
  for (Index k = 0; k < max_iters; ++k) {
    if (!apply(static_cast<const T*>(p), Ap)) return {k, std::sqrt(rr), CGStatus::operator_failed};
    for (Index i = 0; i < n; ++i) Ap[i] += damping * p[i];
    const T pAp = detail::dot(n, p, Ap);
    if (!std::isfinite(pAp)) return {k, std::sqrt(rr), CGStatus::non_finite};
    if (!(pAp > T(0))) return {k, std::sqrt(rr), CGStatus::not_positive_definite};
    const T alpha = rr / pAp;
    for (Index i = 0; i < n; ++i) {
      out_x[i] += alpha * p[i];
      r[i] -= alpha * Ap[i];
    }
    const T rr_new = detail::dot(n, r, r);
    if (!std::isfinite(rr_new)) return {k + 1, std::sqrt(rr_new), CGStatus::non_finite};
    if (rr_new <= tol || rr_new < tiny) return {k + 1, std::sqrt(rr_new), CGStatus::converged};
    const T beta = rr_new / rr;
    for (Index i = 0; i < n; ++i) p[i] = r[i] + beta * p[i];
    rr = rr_new;
  }
  return {max_iters, std::sqrt(rr), CGStatus::max_iterations};
}

// A dense symmetric matrix as a native operator (row-major n x n copy): for tests, for
// embedding, and for small systems. apply is out = M v.
template <class T>
class DenseOperator final : public LinearOperator<T> {
 public:
  DenseOperator(Index n, const T* matrix) : n_(n), m_(matrix, matrix + n * n) {}
  Index size() const override { return n_; }
  void apply(const T* v, T* out) const override {
    for (Index i = 0; i < n_; ++i) out[i] = detail::dot(n_, m_.data() + i * n_, v);
  }

 private:
  Index n_;
  std::vector<T> m_;
};

// Convenience overload for a native operator: allocates the 3 n workspace once.
template <class T>
CGInfo<T> conjugate_gradient(const LinearOperator<T>& op, const T* b, Index max_iters, T tol,
                             T damping, T* out_x) {
  const Index n = op.size();
  std::vector<T> work(static_cast<std::size_t>(3 * n));
  return conjugate_gradient<T>(
      [&op](const T* v, T* out) {
        op.apply(v, out);
        return true;
      },
      n, b, max_iters, tol, damping, out_x, work.data());
}

}  // namespace refrl
