#pragma once
// Native acting path of an actor-critic (refrl.policy.ActorCritic): the policy-MLP and value-MLP
// forward passes for a small batch of observations in one call, reading the live flat parameter
// vector (refrl.nn layout, see mlp.hpp), plus the per-step sampling of a Categorical or diagonal
// Gaussian action from the caller's random numbers (drawn by numpy's Generator in Python, so the
// random stream is the one of the NumPy path).
//
//   h_0 = x,  h_l = phi(h_{l-1} W_l + b_l) (l < L),  y = h_{L-1} W_L + b_L      (per row)
//   Categorical (logits z):  c_k = sum_{j<=k} exp(z_j - max z),  a = #{k : c_k <= u c_{n-1}}
//                            (clamped to n - 1),  log pi(a) = z_a - max z - log c_{n-1}
//   Gaussian (mean mu, log sigma s, noise eps):  a = mu + exp(s) eps,
//                            log pi(a) = -1/2 sum eps^2 - sum s - d/2 log 2 pi
//   Bernoulli (logits z, one per bit):  p = exp(-softplus(-z)),  a_i = [u_i < p_i],
//                            log pi(a) = sum a z - softplus(z),  softplus(z) = max(z, 0) + log1p(exp(-|z|))
//
// The same formulas and operation order as refrl.distributions (Categorical / DiagGaussian /
// Bernoulli .sample_with_log_prob); the Gaussian's arithmetic is in double, as NumPy promotes it there.
// Results equal the NumPy path to rounding (tanh / exp to a few ulp, sums in another order).
//
// Unlike MlpBatch (mlp.hpp) nothing is cached or copied: each row runs through the layers with
// the weights read in place, which is what a batch of 1..16 observations per env step wants.
// The tanh is mlp.hpp's SIMD tanh; kernels compiled for baseline / AVX2 / AVX-512 as there.
//
// No Python, no exceptions (std::bad_alloc aside), no globals.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "refrl/mlp.hpp"

namespace refrl {

// Two MLPs over one flat parameter vector: policy at [0, pi.num_params), value MLP (output
// width 1) at [vf_offset, vf_offset + vf.num_params).
struct ActNets {
  MlpLayout pi, vf;
  Index vf_offset = 0;
  Activation activation = Activation::tanh;
  Isa isa = Isa::generic;
  Index max_width = 0;  // padded widest layer: the workspace is 2 rows of this
};

inline ActNets act_nets(const MlpLayout& pi, const MlpLayout& vf, Index vf_offset, Activation act, Isa isa) {
  ActNets n{pi, vf, vf_offset, act, isa, 0};
  Index w = 0;
  for (Index s : pi.sizes) w = std::max(w, s);
  for (Index s : vf.sizes) w = std::max(w, s);
  n.max_width = detail::padded<double>(w) + 16;  // whole 64-byte vectors of either type
  return n;
}

namespace detail {

// z[0, dout) = b + h W for one row (W row-major [din, dout], read in place); z_j = b_j + sum_i h_i W_ij.
// The outputs in whole 32-byte vectors go through mlp.hpp's register-blocked gemm (one row:
// the accumulators stay in registers over the whole i loop instead of z being reloaded and
// stored per i). The last few: up to 4 (the heads) as dot products over i (summed over vector
// lanes: another order of the same terms), else the plain loop.
template <class T, int VB>
REFRL_ALWAYS_INLINE void affine_row(const T* h, Index din, const T* W, const T* b, Index dout, T* z) {
  Index j0 = 0;
#if REFRL_VECTOR_EXT
  j0 = dout / (32 / Index(sizeof(T))) * (32 / Index(sizeof(T)));
  for (Index j = 0; j < j0; ++j) z[j] = b[j];
  gemm_row_block<T, VB, 1>(true, j0, din, h, din, W, dout, z, dout);
#endif
  if (j0 == dout) return;
  if (dout - j0 <= 4) {  // a head (value: 1 output; policy: a few): dot products over i
    for (Index j = j0; j < dout; ++j) {
      T s = T(0);
#pragma omp simd reduction(+ : s)
      for (Index i = 0; i < din; ++i) s += h[i] * W[i * dout + j];
      z[j] = b[j] + s;
    }
    return;
  }
  for (Index j = j0; j < dout; ++j) z[j] = b[j];
  for (Index i = 0; i < din; ++i) {
    const T a = h[i];
    const T* w = W + i * dout;
#pragma omp simd
    for (Index j = j0; j < dout; ++j) z[j] += a * w[j];
  }
}

// y[0, d_L) = MLP(x) for one row; work: two buffers of n.max_width.
template <class T, int VB>
REFRL_ALWAYS_INLINE void act_row_forward(const MlpLayout& lay, Activation act, const T* theta, const T* x, T* y,
                                         T* buf0, T* buf1, Index width) {
  const Index L = lay.n_layers();
  const T* h = x;
  T* bufs[2] = {buf0, buf1};
  for (Index l = 1; l <= L; ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    const T* W = theta + lay.w_offset[l - 1];
    const T* b = theta + lay.b_offset[l - 1];
    T* z = (l == L) ? y : bufs[l & 1];
    affine_row<T, VB>(h, din, W, b, dout, z);
    if (l < L) {
      if (act == Activation::tanh) {
#if REFRL_VECTOR_EXT
        const Index np = padded<T>(dout);  // whole 32-byte blocks; the padding is set to 0
        for (Index j = dout; j < np; ++j) z[j] = T(0);
        (void)width;
        tanh_row<T, VB>(z, np);
#else
        (void)width;
        for (Index j = 0; j < dout; ++j) z[j] = std::tanh(z[j]);
#endif
      } else {
        for (Index j = 0; j < dout; ++j) z[j] = z[j] > T(0) ? z[j] : T(0);
      }
    }
    h = z;
  }
}

template <class T, int VB>
REFRL_ALWAYS_INLINE void act_forward_kernel(const ActNets& m, const void* theta_v, Index B, const void* x_v,
                                            void* pi_out_v, void* v_out_v) {
  const T* theta = static_cast<const T*>(theta_v);
  const T* x = static_cast<const T*>(x_v);
  T* pi_out = static_cast<T*>(pi_out_v);
  T* v_out = static_cast<T*>(v_out_v);
  std::vector<T> work(std::size_t(3 * m.max_width), T(0));
  T* b0 = work.data();
  T* b1 = b0 + m.max_width;
  T* vy = b1 + m.max_width;
  const Index d0 = m.pi.in_dim(), dpi = m.pi.out_dim();
  for (Index r = 0; r < B; ++r) {
    act_row_forward<T, VB>(m.pi, m.activation, theta, x + r * d0, pi_out + r * dpi, b0, b1, m.max_width);
    act_row_forward<T, VB>(m.vf, m.activation, theta + m.vf_offset, x + r * d0, vy, b0, b1, m.max_width);
    v_out[r] = vy[0];
  }
}

template <class T>
void act_forward_generic(const ActNets& m, const void* th, Index B, const void* x, void* po, void* vo) {
  act_forward_kernel<T, 16>(m, th, B, x, po, vo);
}
#if REFRL_X86_DISPATCH
template <class T>
REFRL_TARGET_AVX2 void act_forward_avx2(const ActNets& m, const void* th, Index B, const void* x, void* po, void* vo) {
  act_forward_kernel<T, 32>(m, th, B, x, po, vo);
}
template <class T>
REFRL_TARGET_AVX512 void act_forward_avx512(const ActNets& m, const void* th, Index B, const void* x, void* po,
                                            void* vo) {
  act_forward_kernel<T, 64>(m, th, B, x, po, vo);
}
#endif

}  // namespace detail

// pi_out [B, pi.out_dim()] and v_out [B] (dense, row-major) from x [B, pi.in_dim()].
// Preconditions (checked by the caller): theta holds vf_offset + vf.num_params values,
// pi.num_params <= vf_offset, pi.in_dim() == vf.in_dim(), vf.out_dim() == 1, isa supported.
template <class T>
void act_forward(const ActNets& m, const T* theta, Index B, const T* x, T* pi_out, T* v_out) {
#if REFRL_X86_DISPATCH
  if (m.isa == Isa::avx512) return detail::act_forward_avx512<T>(m, theta, B, x, pi_out, v_out);
  if (m.isa == Isa::avx2) return detail::act_forward_avx2<T>(m, theta, B, x, pi_out, v_out);
#endif
  detail::act_forward_generic<T>(m, theta, B, x, pi_out, v_out);
}

// True if every entry of a[0, n) is finite.
template <class T>
bool all_finite(const T* a, Index n) {
  for (Index i = 0; i < n; ++i)
    if (!std::isfinite(a[i])) return false;
  return true;
}

// Categorical sample and log-probability per row of logits [B, n] (see the header comment);
// u [B] uniform in [0, 1) (numpy's rng.random). The arithmetic mirrors
// refrl.distributions.Categorical.sample_with_log_prob: exp and the cumulative sum in T, the
// threshold u * c_{n-1} in double. work: n entries.
template <class T>
void categorical_sample(const T* logits, Index B, Index n, const double* u, T* work, std::int64_t* actions, T* logp) {
  for (Index r = 0; r < B; ++r) {
    const T* z = logits + r * n;
    T mx = z[0];
    for (Index j = 1; j < n; ++j) mx = z[j] > mx ? z[j] : mx;
    T c = T(0);
    for (Index j = 0; j < n; ++j) {
      c += std::exp(z[j] - mx);
      work[j] = c;
    }
    const double thr = u[r] * double(c);
    Index k = 0;
    for (Index j = 0; j < n; ++j) k += double(work[j]) <= thr ? 1 : 0;
    if (k > n - 1) k = n - 1;
    actions[r] = k;
    logp[r] = (z[k] - mx) - std::log(c);
  }
}

// Bernoulli sample and log-probability per row of logits [B, n] (see the header comment); u [B, n]
// uniform in [0, 1) (numpy's rng.random). As refrl.distributions.Bernoulli: softplus and p in T,
// the comparison u < p in double (NumPy promotes the float32 p to the float64 u), log pi summed in T.
template <class T>
void bernoulli_sample(const T* logits, Index B, Index n, const double* u, std::int8_t* actions, T* logp) {
  const auto softplus = [](T z) { return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z))); };
  for (Index r = 0; r < B; ++r) {
    T s = T(0);
    for (Index j = 0; j < n; ++j) {
      const T z = logits[r * n + j];
      const T p = std::exp(-softplus(-z));
      const bool bit = u[r * n + j] < double(p);
      actions[r * n + j] = bit ? 1 : 0;
      s += (bit ? z : T(0)) - softplus(z);
    }
    logp[r] = s;
  }
}

// Diagonal Gaussian sample a = mu + exp(log_std) eps and log pi(a) = -1/2 sum eps^2 - const, in
// double (as NumPy promotes float32 mean with float64 noise), rounded to T on store.
// mean [B, d], log_std [d] (already bounded by the caller as DiagGaussian does), eps [B, d].
template <class T>
void gaussian_sample(const T* mean, const T* log_std, Index B, Index d, const double* eps, T* actions, T* logp) {
  constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
  // const = sum log_std + d/2 log 2 pi: in T, as log_std.sum(axis=1) (T) + float is T in NumPy
  T s = T(0);
  for (Index j = 0; j < d; ++j) s += log_std[j];
  const T cst = T(s + T(0.5 * double(d) * kLog2Pi));
  for (Index r = 0; r < B; ++r) {
    double q = 0.0;
    for (Index j = 0; j < d; ++j) {
      const double e = eps[r * d + j];
      actions[r * d + j] = T(double(mean[r * d + j]) + double(T(std::exp(log_std[j]))) * e);
      q += e * e;
    }
    logp[r] = T(-0.5 * q - double(cst));
  }
}

}  // namespace refrl
