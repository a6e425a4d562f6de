#pragma once
// The whole TRPO policy update in C++ (Schulman et al. 2015, "Trust Region Policy Optimization",
// Sec. 6 and Appendix C), so that no Python runs between the CG iterations or line-search tries:
//
//   s      ~= (F + lambda I)^-1 g        cg_iters of conjugate gradient (cg.hpp) over the native
//                                        Fisher operator F at theta_old (fisher.hpp)
//   beta   = sqrt(2 delta / s^T (F + lambda I) s)      step to the KL radius: 1/2 (beta s)^T F (beta s) = delta
//   theta  = theta_old + alpha^j beta s,  j = 0, 1, ..., max_iter - 1:
//            accept the first j with  KLbar(theta_old, theta) <= delta  and  L(theta) > L(theta_old)
//   none accepted -> theta = theta_old, bit for bit (out_theta is never written then)
//   KLbar = sum_b w_b KL(pi_old(.|s_b) || pi_theta(.|s_b)) / sum_b w_b            (TRPO eq. 14)
//   L(theta) - L(theta_old) = sum_b w_b (r_b - 1) A_b / sum_b w_b,  r_b = exp(log pi_theta(a_b|s_b) - logp_old_b)
//
// Every try is one forward pass of the policy MLP (mlp.hpp) over the batch; KL and log pi are
// evaluated in double from the network outputs with the formulas of refrl.distributions:
//   Categorical / MultiCategorical (per component, log p = z - logsumexp z):
//       KL = sum_k p_k (log p_k - log q_k),   log pi(a) = log q_a (summed over components)
//   Diagonal Gaussian [mu | s = log sigma], s bounded to [kLogStdMin, kLogStdMax]:
//       KL = sum_i s_n - s_o + (exp(2 s_o) + (mu_o - mu_n)^2) / (2 exp(2 s_n)) - 1/2
//       log pi(a) = -1/2 sum_i ((a_i - mu_i) / sigma_i)^2 - sum_i s_i - (d/2) log 2 pi
// With line_search == false the full step beta s is taken whenever it is finite (the natural
// policy gradient, Kakade 2001, as Spinning Up's NPG).
//
// Weights: rows with w_b == 0 are not part of the batch (the reset slots of NEXT_STEP collection);
// the Fisher operator is built on the rows with w_b != 0 (each with equal weight, so the weighted
// means above and F agree exactly for a 0/1 mask; refrl.kernels.trpo_step accepts only 0/1).
//
// No Python, no exceptions thrown by this code (std::bad_alloc aside). Preconditions (checked
// by the binding): layout valid, fisher_head_error(...) == nullptr, B >= 1 with at least one
// nonzero weight, actions in range, max_kl > 0, 0 < shrink < 1, cg_iters >= 0, max_iter >= 1,
// subsample >= 1, isa_supported(isa).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "refrl/cg.hpp"
#include "refrl/common.hpp"
#include "refrl/fisher.hpp"
#include "refrl/mlp.hpp"

namespace refrl {

enum class TrpoStatus : int {
  accepted = 0,       // a step was accepted (theta moved)
  rejected = 1,       // every line-search try failed the KL / improvement test: theta = theta_old
  zero_gradient = 2,  // g is 0 or not finite: nothing to follow, theta = theta_old
  bad_curvature = 3,  // s^T (F + lambda I) s is not finite and > 0: theta = theta_old
  cg_non_finite = 4,  // NaN/inf inside CG: theta = theta_old (the Python face raises)
  bad_forward = 5,    // the policy output at theta_old is not finite: theta = theta_old
};

struct TrpoStepSettings {
  double max_kl = 0.01;       // delta
  Index cg_iters = 10;        // CG operator applications
  double cg_tol = 1e-10;      // CG stops when r^T r <= cg_tol
  double cg_damping = 0.1;    // lambda added to F (inside the operator, as NPG.step_direction)
  double shrink = 0.8;        // alpha
  Index max_iter = 10;        // line-search tries (K)
  Index subsample = 1;        // Fisher on every k-th used row
  bool line_search = true;    // false: NPG (take the full step if finite)
};

struct TrpoStepInfo {
  TrpoStatus status = TrpoStatus::rejected;
  bool accepted = false;
  double kl = 0.0;              // exact weighted mean KL after the accepted step (0 otherwise)
  double surrogate_gain = 0.0;  // L(theta) - L(theta_old) of the accepted step (0 otherwise)
  double expected_gain = 0.0;   // g^T (alpha^j beta s) of the accepted (or last tried) step
  double step_fraction = 0.0;   // alpha^j of the accepted step (0 when rejected)
  Index backtracks = 0;         // j of the accepted step; max_iter when rejected
  Index cg_iterations = 0;
  double cg_residual = 0.0;
  CGStatus cg_status = CGStatus::converged;
  double sFs = 0.0;             // s^T (F + lambda I) s
  double beta = 0.0;
  double quadratic_kl = 0.0;    // 1/2 beta^2 sFs (= delta by construction)
  double surrogate_old = 0.0;   // L(theta_old) = sum w A / sum w
};

namespace detail {

inline double log_sum_exp(const double* z, Index n) {
  double zmax = z[0];
  for (Index j = 1; j < n; ++j) zmax = std::max(zmax, z[j]);
  double s = 0.0;
  for (Index j = 0; j < n; ++j) s += std::exp(z[j] - zmax);
  return zmax + std::log(s);
}

inline double clamp_log_std(double s) { return std::min(std::max(s, kLogStdMin), kLogStdMax); }

// Set up m for forward passes only (W_l, h_l and y; no transposes or product workspace) on the
// rows x + b * d_0, b = 0..batch-1.
template <class T>
void mlp_forward_init(MlpBatch<T>& m, const MlpLayout& layout, Activation activation, Isa isa, Index batch, const T* x) {
  m.layout = layout;
  m.activation = activation;
  m.isa = isa;
  m.batch = batch;
  m.tile = std::min(batch, kMlpTileRows);
  const Index L = layout.n_layers();
  m.W.assign(std::size_t(L), Mat<T>());
  m.H.assign(std::size_t(L), Mat<T>());
  for (Index l = 1; l <= L; ++l) {
    m.W[l - 1].resize(layout.sizes[l - 1], layout.sizes[l]);
    if (l < L) m.H[l].resize(batch, layout.sizes[l]);
  }
  m.Y.resize(batch, layout.out_dim());
  m.H[0].resize(batch, layout.in_dim());
  for (Index b = 0; b < batch; ++b)
    std::memcpy(m.H[0].row(b), x + b * layout.in_dim(), sizeof(T) * std::size_t(layout.in_dim()));
}

// Write theta's weight blocks into the cached W_l of m and run the forward pass at theta.
template <class T>
void mlp_forward_at(MlpBatch<T>& m, const T* theta) {
  const MlpLayout& lay = m.layout;
  for (Index l = 1; l <= lay.n_layers(); ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    const T* w = theta + lay.w_offset[l - 1];
    for (Index i = 0; i < din; ++i) std::memcpy(m.W[l - 1].row(i), w + i * dout, sizeof(T) * std::size_t(dout));
  }
  mlp_forward<T>(m, theta);
}

}  // namespace detail

// theta_old: fisher_num_params(layout, head) values [MLP | log_std (gaussian)].
// obs: B rows of layout.in_dim() values (row-major). Actions: act_index [B, K] (0-based, K = 1 for
// categorical, n_nvec for multicategorical) or act_cont [B, d_L] (gaussian); the other is null.
// logp_old, adv, weights: [B]. g: [n] the policy gradient at theta_old.
// out_theta: [n]; written only when a step is accepted (the caller pre-fills it with theta_old).
template <class T>
TrpoStepInfo trpo_step(const MlpLayout& layout, Activation activation, PolicyHead head, const Index* nvec,
                       Index n_nvec, const T* theta_old, Index B, const T* obs, const std::int64_t* act_index,
                       const T* act_cont, const T* logp_old, const T* adv, const T* weights, const T* g,
                       const TrpoStepSettings& cfg, Isa isa, T* out_theta) {
  static_assert(is_real_v<T>, "refrl::trpo_step is defined for float and double");
  TrpoStepInfo info;
  const Index n = fisher_num_params(layout, head);
  const Index d0 = layout.in_dim(), dL = layout.out_dim();
  const bool gaussian = head == PolicyHead::gaussian;
  std::vector<Index> comps;  // categorical component sizes
  if (head == PolicyHead::categorical) comps.assign(1, dL);
  if (head == PolicyHead::multicategorical) comps.assign(nvec, nvec + n_nvec);
  const Index K = Index(comps.size());

  // the rows that are part of the batch (w != 0), compacted
  std::vector<Index> rows;
  double w_sum = 0.0, wa_sum = 0.0;
  for (Index b = 0; b < B; ++b)
    if (weights[b] != T(0)) {
      rows.push_back(b);
      w_sum += double(weights[b]);
      wa_sum += double(weights[b]) * double(adv[b]);
    }
  const Index Bu = Index(rows.size());
  info.surrogate_old = Bu > 0 ? wa_sum / w_sum : 0.0;
  info.backtracks = 0;
  if (Bu == 0) {
    info.status = TrpoStatus::zero_gradient;
    return info;
  }
  std::vector<T> x(static_cast<std::size_t>(Bu * d0));
  for (Index i = 0; i < Bu; ++i) std::memcpy(x.data() + i * d0, obs + rows[std::size_t(i)] * d0, sizeof(T) * std::size_t(d0));

  double gg = 0.0;
  for (Index i = 0; i < n; ++i) gg += double(g[i]) * double(g[i]);
  if (!std::isfinite(gg) || gg == 0.0) {
    info.status = TrpoStatus::zero_gradient;
    return info;
  }

  // s ~= (F + lambda I)^-1 g: CG over the native Fisher operator at theta_old
  FisherOperator<T> F(layout, activation, head, nvec, n_nvec, theta_old, Bu, x.data(), d0, cfg.subsample,
                      T(cfg.cg_damping), isa);
  if (!F.forward_finite()) {
    info.status = TrpoStatus::bad_forward;
    return info;
  }
  std::vector<T> s(static_cast<std::size_t>(n)), Fs(static_cast<std::size_t>(n));
  const CGInfo<T> cg = conjugate_gradient<T>(F, g, cfg.cg_iters, T(cfg.cg_tol), T(0), s.data());
  info.cg_iterations = cg.iterations;
  info.cg_residual = double(cg.residual_norm);
  info.cg_status = cg.status;
  if (cg.status == CGStatus::non_finite || cg.status == CGStatus::operator_failed) {
    info.status = TrpoStatus::cg_non_finite;
    return info;
  }
  F.apply(s.data(), Fs.data());
  double sFs = 0.0;
  for (Index i = 0; i < n; ++i) sFs += double(s[std::size_t(i)]) * double(Fs[std::size_t(i)]);
  info.sFs = sFs;
  if (!(std::isfinite(sFs) && sFs > 0.0)) {
    info.status = TrpoStatus::bad_curvature;
    return info;
  }
  const double beta = std::sqrt(2.0 * cfg.max_kl / sFs);
  info.beta = beta;
  info.quadratic_kl = 0.5 * beta * beta * sFs;
  std::vector<double> full(static_cast<std::size_t>(n));
  double expected_full = 0.0;
  for (Index i = 0; i < n; ++i) {
    full[std::size_t(i)] = beta * double(s[std::size_t(i)]);
    expected_full += double(g[i]) * full[std::size_t(i)];
  }

  // pi_old on the used rows: log-softmax per component, or (mu, bounded log sigma)
  MlpBatch<T> net;
  detail::mlp_forward_init<T>(net, layout, activation, isa, Bu, x.data());
  detail::mlp_forward_at<T>(net, theta_old);
  std::vector<double> old_out(static_cast<std::size_t>(Bu * dL));  // log p (categorical) or mu (gaussian)
  std::vector<double> old_s(gaussian ? std::size_t(dL) : 0), buf(static_cast<std::size_t>(dL));
  for (Index b = 0; b < Bu; ++b) {
    double* o = old_out.data() + b * dL;
    for (Index j = 0; j < dL; ++j) o[j] = double(mlp_output(net, b, j));
    if (!gaussian)
      for (Index k = 0, off = 0; k < K; off += comps[std::size_t(k)], ++k) {
        const double lse = detail::log_sum_exp(o + off, comps[std::size_t(k)]);
        for (Index j = 0; j < comps[std::size_t(k)]; ++j) o[off + j] -= lse;
      }
  }
  if (gaussian)
    for (Index j = 0; j < dL; ++j) old_s[std::size_t(j)] = detail::clamp_log_std(double(theta_old[layout.num_params + j]));

  static constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
  std::vector<T> theta(static_cast<std::size_t>(n));
  std::vector<double> new_s(gaussian ? std::size_t(dL) : 0), inv_std(new_s.size()), kl_const(new_s.size());
  double frac = 1.0;
  const Index tries = cfg.line_search ? cfg.max_iter : 1;
  for (Index j = 0; j < tries; ++j) {
    for (Index i = 0; i < n; ++i) theta[std::size_t(i)] = theta_old[i] + T(frac * full[std::size_t(i)]);
    info.expected_gain = frac * expected_full;
    detail::mlp_forward_at<T>(net, theta.data());
    double kl_sum = 0.0, gain_sum = 0.0;
    double gauss_const = 0.0;  // -sum_i s_i - (d/2) log 2 pi
    if (gaussian) {
      gauss_const = -0.5 * double(dL) * kLog2Pi;
      for (Index i = 0; i < dL; ++i) {
        const double so = old_s[std::size_t(i)], sn = detail::clamp_log_std(double(theta[std::size_t(layout.num_params + i)]));
        new_s[std::size_t(i)] = sn;
        inv_std[std::size_t(i)] = std::exp(-sn);
        // KL_i = c_i + (mu_o - mu_n)^2 / (2 sigma_n^2),  c_i = s_n - s_o + sigma_o^2 / (2 sigma_n^2) - 1/2
        kl_const[std::size_t(i)] = sn - so + 0.5 * std::exp(2.0 * so) * std::exp(-2.0 * sn) - 0.5;
        gauss_const -= sn;
      }
    }
    for (Index b = 0; b < Bu; ++b) {
      const Index r = rows[std::size_t(b)];
      const double* o = old_out.data() + b * dL;
      double* q = buf.data();
      for (Index i = 0; i < dL; ++i) q[i] = double(mlp_output(net, b, i));
      double kl = 0.0, logp = 0.0;
      if (gaussian) {
        const T* a = act_cont + r * dL;
        for (Index i = 0; i < dL; ++i) {
          const double is = inv_std[std::size_t(i)];
          const double diff = (o[i] - q[i]) * is;
          kl += kl_const[std::size_t(i)] + 0.5 * diff * diff;
          const double z = (double(a[i]) - q[i]) * is;
          logp += -0.5 * z * z;
        }
        logp += gauss_const;
      } else {
        const std::int64_t* a = act_index + r * K;
        for (Index k = 0, off = 0; k < K; off += comps[std::size_t(k)], ++k) {
          const Index nk = comps[std::size_t(k)];
          const double lse = detail::log_sum_exp(q + off, nk);
          for (Index i = 0; i < nk; ++i) kl += std::exp(o[off + i]) * (o[off + i] - (q[off + i] - lse));
          logp += q[off + Index(a[k])] - lse;
        }
      }
      const double w = double(weights[r]);
      kl_sum += w * kl;
      gain_sum += w * std::expm1(logp - double(logp_old[r])) * double(adv[r]);
    }
    const double kl = kl_sum / w_sum, gain = gain_sum / w_sum;
    const bool finite = std::isfinite(kl) && std::isfinite(gain);
    const bool ok = cfg.line_search ? (finite && kl <= cfg.max_kl && gain > 0.0) : finite;
    if (ok) {
      std::memcpy(out_theta, theta.data(), sizeof(T) * std::size_t(n));
      info.status = TrpoStatus::accepted;
      info.accepted = true;
      info.kl = kl;
      info.surrogate_gain = gain;
      info.step_fraction = frac;
      info.backtracks = j;
      return info;
    }
    frac *= cfg.shrink;
  }
  info.status = TrpoStatus::rejected;
  info.backtracks = cfg.line_search ? cfg.max_iter : 0;
  return info;
}

}  // namespace refrl
