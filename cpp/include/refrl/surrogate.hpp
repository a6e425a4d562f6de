#pragma once
// PPO clipped surrogate objective, its gradient with respect to log pi_theta, and statistics,
// in one pass over the batch. Schulman, Wolski, Dhariwal, Radford, Klimov (2017), "Proximal
// Policy Optimization Algorithms", eq. (7):
//   r_i     = exp(logp_i - logp_old_i)
//   L^CLIP  = sum_i w_i * min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i) / sum_i w_i
//   dL/dlogp_i = w_i r_i A_i / sum_i w_i  where the unclipped term r_i A_i is the min
//                (ties included: inside the clip range both terms are equal), else 0
// Statistics (CleanRL / Stable-Baselines3 definitions, weighted by w):
//   clip_fraction = sum w [|r - 1| > eps] / sum w
//   approx_kl     = sum w ((r - 1) - log r) / sum w        (Schulman's k3 estimator)
//   ratio_min / ratio_max over samples with w != 0; ratio_mean = sum w r / sum w.
// Samples with w == 0 are skipped entirely (their inputs are never used, so padding may hold
// anything). Sums are accumulated in double for float and double inputs. The ratio's exp is
// vecmath.hpp's vexp. Runs in the generic or AVX2 variant (isa.hpp): the vectorised sums are
// split over the lanes of that width.
// No Python, no third-party headers, no allocation, no exceptions, no macros.
#include <cmath>
#include <cstdint>
#include <limits>

#include "refrl/common.hpp"
#include "refrl/isa.hpp"
#include "refrl/vecmath.hpp"

namespace refrl {

struct SurrogateStats {
  double objective;
  double clip_fraction;
  double approx_kl;
  double ratio_min;
  double ratio_mean;
  double ratio_max;
  double weight_sum;      // sum of w (B when weights is null)
  Index invalid_weights;  // weights that are negative, NaN or inf (0 when weights is null)
  // Nothing was computed (all outputs NaN, out_grad_logp zero) unless invalid_weights == 0 and
  // 0 < weight_sum < inf.
};

namespace detail {

// One pass over the batch. Every branch is a select, so the loop vectorises (with
// -fopenmp-simd the reductions are split over vector lanes: the order of the additions
// then depends on the vector width, as with any vectorised sum).
template <class T, bool Weighted>
SurrogateStats surrogate_pass(Index batch, const T* logp, const T* logp_old, const T* advantages,
                              const T* weights, T clip_eps, double weight_sum, T* out_grad_logp) {
  const T inv_weight_sum = static_cast<T>(1.0 / weight_sum);
  const T lo = T(1) - clip_eps;
  const T hi = T(1) + clip_eps;
  double objective = 0.0, clipped = 0.0, kl = 0.0, ratio_sum = 0.0;
  T ratio_min = std::numeric_limits<T>::infinity();
  T ratio_max = -std::numeric_limits<T>::infinity();
  // Blocks of 1024: sums within a block run in T over the vector lanes (128 terms per lane for
  // float with AVX2), each block's sums are then added in double. No float -> double
  // conversion in the hot loop, and float round-off stays that of ~100-term sums.
  constexpr Index block = 1024;
  for (Index i0 = 0; i0 < batch; i0 += block) {
    const Index i1 = i0 + block < batch ? i0 + block : batch;
    // pass 1: the ratios (exp alone in the loop: few live registers, so it stays in registers)
    T ratio_buf[block];
#pragma omp simd
    for (Index i = i0; i < i1; ++i) ratio_buf[i - i0] = vexp(logp[i] - logp_old[i]);
    // pass 2: everything else, reading the ratios back from L1
    T objective_b = T(0), clipped_b = T(0), kl_b = T(0), ratio_sum_b = T(0);
#pragma omp simd reduction(+ : objective_b, clipped_b, kl_b, ratio_sum_b) reduction(min : ratio_min) reduction(max : ratio_max)
    for (Index i = i0; i < i1; ++i) {
      const T w = Weighted ? weights[i] : T(1);
      const bool used = !Weighted | (w != T(0));  // w == 0: padding, whatever it holds
      const T log_ratio = logp[i] - logp_old[i];
      const T ratio = ratio_buf[i - i0];
      const T adv = advantages[i];
      T ratio_clipped = ratio < lo ? lo : ratio;
      ratio_clipped = ratio_clipped > hi ? hi : ratio_clipped;
      const T surr_unclipped = ratio * adv;
      const T surr_clipped = ratio_clipped * adv;
      const bool unclipped_is_min = surr_unclipped <= surr_clipped;
      const T surr = unclipped_is_min ? surr_unclipped : surr_clipped;
      const T abs_dev = ratio - T(1) < T(0) ? T(1) - ratio : ratio - T(1);
      // every select is made in T (a float mask with a double select is where GCC 12's
      // vectoriser once went wrong)
      const T w_used = used ? w : T(0);
      out_grad_logp[i] = (used & unclipped_is_min) ? w * surr_unclipped * inv_weight_sum : T(0);
      const T obj_i = used ? w * surr : T(0);  // not w_used * surr: w = 0 with surr NaN must give 0
      const T clip_i = abs_dev > clip_eps ? w_used : T(0);
      const T kl_i = used ? w * ((ratio - T(1)) - log_ratio) : T(0);
      const T ratio_i = used ? w * ratio : T(0);
      objective_b += obj_i;
      clipped_b += clip_i;
      kl_b += kl_i;
      ratio_sum_b += ratio_i;
      ratio_min = (used & (ratio < ratio_min)) ? ratio : ratio_min;
      ratio_max = (used & (ratio > ratio_max)) ? ratio : ratio_max;
    }
    objective += static_cast<double>(objective_b);
    clipped += static_cast<double>(clipped_b);
    kl += static_cast<double>(kl_b);
    ratio_sum += static_cast<double>(ratio_sum_b);
  }
  const double inv = 1.0 / weight_sum;
  return {objective * inv, clipped * inv, kl * inv, static_cast<double>(ratio_min), ratio_sum * inv,
          static_cast<double>(ratio_max), weight_sum, 0};
}

// The weight check and the pass, in one variant.
template <class T>
SurrogateStats surrogate_body(Index batch, const T* logp, const T* logp_old, const T* advantages,
                              const T* weights, T clip_eps, T* out_grad_logp) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr T t_max = std::numeric_limits<T>::max();
  double weight_sum = static_cast<double>(batch);
  Index invalid = 0;
  if (weights != nullptr) {
    weight_sum = 0.0;
#pragma omp simd reduction(+ : weight_sum, invalid)
    for (Index i = 0; i < batch; ++i) {
      const T w = weights[i];
      weight_sum += static_cast<double>(w);
      invalid += (w >= T(0) && w <= t_max) ? 0 : 1;  // false for NaN too
    }
  }
  if (invalid != 0 || !(weight_sum > 0.0) || !(weight_sum <= std::numeric_limits<double>::max())) {
    for (Index i = 0; i < batch; ++i) out_grad_logp[i] = T(0);
    return {nan, nan, nan, nan, nan, nan, weight_sum, invalid};
  }
  if (weights == nullptr)
    return surrogate_pass<T, false>(batch, logp, logp_old, advantages, weights, clip_eps, weight_sum, out_grad_logp);
  return surrogate_pass<T, true>(batch, logp, logp_old, advantages, weights, clip_eps, weight_sum, out_grad_logp);
}

struct SurrogateKernel {
  template <Isa I, class... A>
  static SurrogateStats run(A... args) {
    return surrogate_body(args...);
  }
};

}  // namespace detail

// logp, logp_old, advantages, out_grad_logp: [B]; weights: [B] or nullptr (all ones).
// out_grad_logp must not alias the inputs. The weights are checked in the same pass as their
// sum: if any is negative, NaN or inf, or if sum w <= 0 (or B == 0) or overflows, all outputs
// are NaN, out_grad_logp is zero, and invalid_weights / weight_sum say why.
template <class T>
SurrogateStats clipped_surrogate(Index batch, const T* logp, const T* logp_old, const T* advantages,
                                 const T* weights, T clip_eps, T* out_grad_logp) {
  static_assert(is_real_v<T>, "refrl::clipped_surrogate is defined for float and double");
  return dispatch<Isa::avx2, detail::SurrogateKernel>(kernel_isa(), batch, logp, logp_old, advantages, weights,
                                                      clip_eps, out_grad_logp);
}

}  // namespace refrl
