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
// anything). No Python, no third-party headers, no allocation, no exceptions.
#include <cmath>
#include <cstdint>
#include <limits>

#include "refrl/common.hpp"

namespace refrl {

// Sums are accumulated in double for both float and double inputs.
struct SurrogateStats {
  double objective;
  double clip_fraction;
  double approx_kl;
  double ratio_min;
  double ratio_mean;
  double ratio_max;
  double weight_sum;  // sum of w (B when weights is null); <= 0 means nothing was computed
};

// logp, logp_old, advantages, out_grad_logp: [B]; weights: [B] or nullptr (all ones).
// out_grad_logp must not alias the inputs. If sum w <= 0 (or B == 0) all outputs are NaN
// and out_grad_logp is zero.
template <class T>
SurrogateStats clipped_surrogate(Index batch, const T* logp, const T* logp_old, const T* advantages,
                                 const T* weights, T clip_eps, T* out_grad_logp) {
  static_assert(is_real_v<T>, "refrl::clipped_surrogate is defined for float and double");
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  double weight_sum = 0.0;
  if (weights == nullptr) {
    weight_sum = static_cast<double>(batch);
  } else {
    for (Index i = 0; i < batch; ++i) weight_sum += static_cast<double>(weights[i]);
  }
  if (!(weight_sum > 0.0)) {
    for (Index i = 0; i < batch; ++i) out_grad_logp[i] = T(0);
    return {nan, nan, nan, nan, nan, nan, weight_sum};
  }
  const T inv_weight_sum = static_cast<T>(1.0 / weight_sum);
  const T lo = T(1) - clip_eps;
  const T hi = T(1) + clip_eps;
  double objective = 0.0, clipped = 0.0, kl = 0.0, ratio_sum = 0.0;
  double ratio_min = std::numeric_limits<double>::infinity();
  double ratio_max = -std::numeric_limits<double>::infinity();
  for (Index i = 0; i < batch; ++i) {
    const T w = weights ? weights[i] : T(1);
    if (w == T(0)) {  // masked (padding / invalid step): contributes nothing
      out_grad_logp[i] = T(0);
      continue;
    }
    const T log_ratio = logp[i] - logp_old[i];
    const T ratio = std::exp(log_ratio);
    const T adv = advantages[i];
    const T ratio_clipped = std::fmin(std::fmax(ratio, lo), hi);
    const T surr_unclipped = ratio * adv;
    const T surr_clipped = ratio_clipped * adv;
    const bool unclipped_is_min = surr_unclipped <= surr_clipped;
    objective += static_cast<double>(w * (unclipped_is_min ? surr_unclipped : surr_clipped));
    out_grad_logp[i] = unclipped_is_min ? w * surr_unclipped * inv_weight_sum : T(0);
    clipped += std::fabs(ratio - T(1)) > clip_eps ? static_cast<double>(w) : 0.0;
    kl += static_cast<double>(w * ((ratio - T(1)) - log_ratio));
    ratio_sum += static_cast<double>(w * ratio);
    ratio_min = std::fmin(ratio_min, static_cast<double>(ratio));
    ratio_max = std::fmax(ratio_max, static_cast<double>(ratio));
  }
  const double inv = 1.0 / weight_sum;
  return {objective * inv, clipped * inv, kl * inv, ratio_min, ratio_sum * inv, ratio_max, weight_sum};
}

}  // namespace refrl
