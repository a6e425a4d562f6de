#pragma once
// Native acting path of an actor-critic (refrl.policy.ActorCritic): the policy-MLP and value-MLP
// forward passes for a small batch of observations in one call, reading the live flat parameter
// vector (refrl.nn layout, see mlp.hpp), plus the per-step sampling of a Categorical, diagonal
// Gaussian or Bernoulli action from the caller's random numbers (drawn by numpy's Generator in Python, so the
// random stream is the one of the NumPy path).
//
//   h_0 = x,  h_l = phi(h_{l-1} W_l + b_l) (l < L),  y = h_{L-1} W_L + b_L      (per row)
//   Categorical (logits z):  c_k = sum_{j<=k} exp(z_j - max z),  a = #{k : c_k <= u c_{n-1}}
//                            (clamped to n - 1),  log pi(a) = z_a - max z - log c_{n-1}
//   Gaussian (mean mu, log sigma s, noise eps):  a = mu + exp(s) eps,
//                            log pi(a) = -1/2 sum eps^2 - sum s - d/2 log 2 pi
//   Bernoulli (logits z, one per bit):  a_i = [u_i < sigmoid(z_i)],  log pi(a) = sum a z - softplus(z)
//
// The sampling formulas live in distributions.hpp (with the Fisher blocks of the same
// distributions). Results equal the NumPy path to rounding (tanh / exp to a few ulp, sums in
// another order).
//
// Unlike MlpBatch (mlp.hpp) nothing is cached or copied: each row runs through the layers with
// the weights read in place, which is what a batch of 1..16 observations per env step wants.
// The tanh and the GEMM are vecmath.hpp's; the forward pass runs in the variant of isa.hpp
// named by ActNets::isa.
//
// No Python, no exceptions (std::bad_alloc aside), no globals.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "refrl/distributions.hpp"
#include "refrl/isa.hpp"
#include "refrl/mlp.hpp"
#include "refrl/vecmath.hpp"

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
// The outputs in whole 32-byte vectors go through vecmath.hpp's register-blocked gemm (one row:
// the accumulators stay in registers over the whole i loop instead of z being reloaded and
// stored per i). The last few: up to 4 (the heads) as dot products over i (summed over vector
// lanes: another order of the same terms), else the plain loop.
template <class T, int VB>
[[gnu::always_inline]] inline void affine_row(const T* h, Index din, const T* W, const T* b, Index dout, T* z) {
  Index j0 = 0;
  if constexpr (kVectorExtensions) {
    j0 = dout / (32 / Index(sizeof(T))) * (32 / Index(sizeof(T)));
    for (Index j = 0; j < j0; ++j) z[j] = b[j];
    gemm_row_block<T, VB, 1>(true, j0, din, h, din, W, dout, z, dout);
  }
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
[[gnu::always_inline]] inline void act_row_forward(const MlpLayout& lay, Activation act, const T* theta, const T* x, T* y,
                                         T* buf0, T* buf1) {
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
        const Index np = kVectorExtensions ? padded<T>(dout) : dout;  // whole 32-byte blocks
        for (Index j = dout; j < np; ++j) z[j] = T(0);                  // the padding is set to 0
        tanh_row<T, VB>(z, np);
      } else {
        for (Index j = 0; j < dout; ++j) z[j] = z[j] > T(0) ? z[j] : T(0);
      }
    }
    h = z;
  }
}

template <class T, int VB>
[[gnu::always_inline]] inline void act_forward_kernel(const ActNets& m, const T* theta, Index B, const T* x,
                                                      T* pi_out, T* v_out) {
  std::vector<T> work(std::size_t(3 * m.max_width), T(0));
  T* b0 = work.data();
  T* b1 = b0 + m.max_width;
  T* vy = b1 + m.max_width;
  const Index d0 = m.pi.in_dim(), dpi = m.pi.out_dim();
  for (Index r = 0; r < B; ++r) {
    act_row_forward<T, VB>(m.pi, m.activation, theta, x + r * d0, pi_out + r * dpi, b0, b1);
    act_row_forward<T, VB>(m.vf, m.activation, theta + m.vf_offset, x + r * d0, vy, b0, b1);
    v_out[r] = vy[0];
  }
}

struct ActForwardKernel {
  template <Isa I, class T>
  static void run(const ActNets* m, const T* theta, Index B, const T* x, T* pi_out, T* v_out) {
    act_forward_kernel<T, vector_bytes(I)>(*m, theta, B, x, pi_out, v_out);
  }
};

}  // namespace detail

// pi_out [B, pi.out_dim()] and v_out [B] (dense, row-major) from x [B, pi.in_dim()].
// Preconditions (checked by the caller): theta holds vf_offset + vf.num_params values,
// pi.num_params <= vf_offset, pi.in_dim() == vf.in_dim(), vf.out_dim() == 1, isa supported.
template <class T>
void act_forward(const ActNets& m, const T* theta, Index B, const T* x, T* pi_out, T* v_out) {
  dispatch<Isa::avx512, detail::ActForwardKernel>(m.isa, &m, theta, B, x, pi_out, v_out);
}

}  // namespace refrl
