#pragma once
// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1), one step
// in place on a flat parameter vector. With g = grads and t the step number (t >= 1):
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   θ ← θ − α·m̂ / (√v̂ + ε),   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
// ε is added after the bias-corrected square root (Algorithm 1, as torch.optim.Adam), written
// as √v̂ = √v · (1/√(1 − β2^t)). The scalar factors (1 − β1, 1 − β2, the bias corrections) are
// formed in double from the hyperparameters and rounded to T once, so that a float step uses
// the float nearest to 1 − β2 (not 1 − float(β2), which is off by ~1e-5 relative for 0.999).
// One pass over the vector instead of the dozen array operations of a NumPy formulation, in the
// generic or AVX2 variant (isa.hpp; AVX2 fuses multiply-adds, so the two agree to rounding).
// No allocation; theta, m and v are updated in place and must not alias each other or g.
#include <cmath>

#include "refrl/common.hpp"
#include "refrl/isa.hpp"

namespace refrl {
namespace detail {

template <class T>
void adam_body(Index n, T* theta, const T* g, T* m, T* v, long long t, double lr, double beta1, double beta2,
               double eps) {
  const double td = static_cast<double>(t);
  const T b1 = static_cast<T>(beta1), one_minus_b1 = static_cast<T>(1.0 - beta1);
  const T b2 = static_cast<T>(beta2), one_minus_b2 = static_cast<T>(1.0 - beta2);
  const T inv_sqrt_bias2 = static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(beta2, td)));  // 1/√(1 − β2^t)
  const T step_scale = static_cast<T>(lr / (1.0 - std::pow(beta1, td)));               // α/(1 − β1^t)
  const T e = static_cast<T>(eps);
#pragma omp simd
  for (Index i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = b1 * m[i] + one_minus_b1 * gi;          // first moment
    const T vi = b2 * v[i] + one_minus_b2 * (gi * gi);   // second (raw) moment
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) * inv_sqrt_bias2 + e;  // √v̂ + ε
    theta[i] -= step_scale * (mi / denom);               // α m̂ / (√v̂ + ε)
  }
}

struct AdamKernel {
  template <Isa I, class... A>
  static void run(A... args) {
    adam_body(args...);
  }
};

}  // namespace detail

template <class T>
void adam_step(Index n, T* theta, const T* g, T* m, T* v, long long t, double lr, double beta1, double beta2,
               double eps) {
  static_assert(is_real_v<T>, "refrl kernels are defined for float and double");
  dispatch<Isa::avx2, detail::AdamKernel>(kernel_isa(), n, theta, g, m, v, t, lr, beta1, beta2, eps);
}

}  // namespace refrl
