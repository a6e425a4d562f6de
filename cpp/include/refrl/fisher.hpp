#pragma once
// Fisher-vector product of an MLP policy, as a native linear operator (so that the conjugate-
// gradient solver of cg.hpp runs every iteration without leaving C++).
//
//   F v = (1/B) sum_b J_b^T M_b J_b v   (+ damping v)
//
// J_b: Jacobian of the distribution parameters of state s_b with respect to the policy
// parameters theta = [MLP | log_std (Gaussian only)], M_b: Fisher information of the action
// distribution in its own parameters = the Hessian of KL(pi_old(.|s_b) || pi(.|s_b)) at
// pi = pi_old. Hence F is the Hessian of the mean KL at theta_old (Schulman et al. 2015, TRPO,
// App. C; Martens 2014, "New insights and perspectives on the natural gradient", Sec. 9):
//   M per distribution (Categorical, MultiCategorical, DiagGaussian, Bernoulli): distributions.hpp.
// Because log sigma is shared by all states, its block of F is 2 I (mean over the batch of 2),
// and the mean/log-sigma cross blocks vanish.
//
// The activations at theta_old are computed once at construction (mlp.hpp) and reused by every
// apply(). `subsample = k` uses only rows 0, k, 2k, ... of the batch (the OpenAI Baselines TRPO
// trick: a cheaper, noisier curvature estimate).
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "refrl/common.hpp"
#include "refrl/distributions.hpp"
#include "refrl/isa.hpp"
#include "refrl/mlp.hpp"

namespace refrl {

// Number of policy parameters: the MLP's, plus d_L log-std entries for the Gaussian head.
inline Index fisher_num_params(const MlpLayout& layout, PolicyHead head) {
  return layout.num_params + (head == PolicyHead::gaussian ? DiagGaussian::extra_params(layout.out_dim()) : 0);
}

// Validate the head against the layout. nvec (component sizes) only for multicategorical.
// Returns nullptr if valid, else a message.
inline const char* fisher_head_error(const MlpLayout& layout, PolicyHead head, const Index* nvec, Index n_nvec) {
  if (head == PolicyHead::multicategorical) {
    if (n_nvec < 1) return "nvec must be non-empty for the multicategorical head";
    Index total = 0;
    for (Index i = 0; i < n_nvec; ++i) {
      if (nvec[i] < 1) return "every entry of nvec must be >= 1";
      total += nvec[i];
      if (total > layout.out_dim()) break;
    }
    if (total != layout.out_dim()) return "sum(nvec) must equal the output width sizes[-1]";
  } else if (n_nvec != 0) {
    return "nvec is only accepted for the multicategorical head";
  }
  return nullptr;
}

template <class T>
class FisherOperator final : public LinearOperator<T> {
 public:
  // theta: fisher_num_params(layout, head) values ([MLP | log_std]); obs: the rows
  // obs + b * obs_stride for b = 0..n_obs-1, each with layout.in_dim() values; only every
  // subsample-th row is used. Preconditions (the binding checks them): layout valid,
  // fisher_head_error(...) == nullptr, n_obs >= 1, subsample >= 1, isa_supported(isa).
  FisherOperator(const MlpLayout& layout, Activation activation, PolicyHead head, const Index* nvec,
                 Index n_nvec, const T* theta, Index n_obs, const T* obs, Index obs_stride, Index subsample,
                 T damping, Isa isa)
      : head_(head), damping_(damping), subsample_(subsample), n_obs_(n_obs), nvec_(nvec, nvec + n_nvec) {
    size_ = fisher_num_params(layout, head);
    const Index k = std::min(subsample, n_obs);  // same rows; keeps k * obs_stride in range
    const Index used = 1 + (n_obs - 1) / k;
    mlp_batch_init<T>(net_, layout, activation, isa, theta, used, obs, obs_stride * k);
    const Index B = used, dL = layout.out_dim();
    for (Index b = 0; b < B && forward_finite_; ++b)
      for (Index j = 0; j < dL; ++j)
        if (!std::isfinite(mlp_output(net_, b, j))) forward_finite_ = false;
    if (head == PolicyHead::gaussian) {
      const T* log_std = theta + layout.num_params;
      inv_var_.resize(std::size_t(dL));
      std_inside_.resize(std::size_t(dL));
      DiagGaussian::fisher_prepare(log_std, dL, inv_var_.data(), std_inside_.data());
    } else if (head == PolicyHead::bernoulli) {
      probs_.assign(std::size_t(B * dL), T(0));  // p (1 - p) per bit, cached at theta_old
      for (Index b = 0; b < B; ++b) Bernoulli::fisher_prepare(net_.Y.row(b), dL, probs_.data() + b * dL);
    } else {
      if (head == PolicyHead::categorical) nvec_.assign(1, dL);
      // p = softmax(z) per component, cached at theta_old
      probs_.assign(std::size_t(B * dL), T(0));
      for (Index b = 0; b < B; ++b) {
        Index o = 0;
        for (Index n : nvec_) {
          Categorical::fisher_prepare(net_.Y.row(b) + o, n, probs_.data() + b * dL + o);
          o += n;
        }
      }
    }
  }

  Index size() const override { return size_; }

  void apply(const T* v, T* out) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    MlpBatch<T>& m = net_;
    const MlpLayout& lay = m.layout;
    const Index L = lay.n_layers(), B = m.batch, dL = lay.out_dim();
    const T scale = T(1) / T(B);
    detail::mlp_load_direction<T>(m, v);
    for (Index b0 = 0; b0 < B; b0 += m.tile) {  // J v, then M, then J^T u, one tile of rows at a time
      const Index nb = std::min(m.tile, B - b0);
      detail::mlp_jvp<T>(m, v, b0, nb);  // rows [0, nb) of m.R[L] = J v on the network outputs
      detail::Mat<T>& R = m.R[L];        // u = (1/B) M J v overwrites J v in place, row by row
      if (head_ == PolicyHead::gaussian) {
        // u = (1/B) diag(1/sigma^2) J v on the mean
        for (Index b = 0; b < nb; ++b) DiagGaussian::fisher_block(inv_var_.data(), dL, scale, R.row(b));
      } else if (head_ == PolicyHead::bernoulli) {
        // u = (1/B) diag(p (1 - p)) J v
        for (Index b = 0; b < nb; ++b) Bernoulli::fisher_block(probs_.data() + (b0 + b) * dL, dL, scale, R.row(b));
      } else {
        // u = (1/B) (diag(p) - p p^T) J v per categorical component
        for (Index b = 0; b < nb; ++b) {
          T* r = R.row(b);
          const T* p = probs_.data() + (b0 + b) * dL;
          Index o = 0;
          for (Index n : nvec_) {
            Categorical::fisher_block(p + o, n, scale, r + o);
            o += n;
          }
        }
      }
      detail::mlp_vjp<T>(m, b0, nb, b0 == 0);  // accumulate J^T u over the tiles
    }
    detail::mlp_store_gradient<T>(m, out);  // out[:num_params] = J^T u
    if (head_ == PolicyHead::gaussian) {
      DiagGaussian::fisher_log_std_block(std_inside_.data(), dL, v + lay.num_params, out + lay.num_params);
    }
    const T lam = damping_;
    if (lam != T(0))
      for (Index i = 0; i < size_; ++i) out[i] += lam * v[i];
  }

  T damping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return damping_;
  }
  void set_damping(T damping) {
    std::lock_guard<std::mutex> lock(mutex_);
    damping_ = damping;
  }
  PolicyHead head() const { return head_; }
  Index batch_size() const { return net_.batch; }  // rows used (after subsampling)
  Index n_obs() const { return n_obs_; }           // rows given
  Index subsample() const { return subsample_; }
  Isa isa() const { return net_.isa; }
  // false if the network output at theta_old overflowed (NaN/inf): the products are then NaN
  bool forward_finite() const { return forward_finite_; }
  const MlpLayout& layout() const { return net_.layout; }
  Activation activation() const { return net_.activation; }
  const std::vector<Index>& nvec() const { return nvec_; }

 private:
  PolicyHead head_;
  T damping_;
  Index subsample_, n_obs_, size_ = 0;
  bool forward_finite_ = true;
  std::vector<Index> nvec_;  // categorical component sizes (one entry for Categorical)
  std::vector<T> probs_;     // [B, d_L] softmax per component (Bernoulli: p (1 - p)) at theta_old
  std::vector<T> inv_var_;   // [d_L] 1/sigma^2 (Gaussian)
  std::vector<T> std_inside_;  // [d_L] 1 where log sigma is inside its bounds, else 0
  mutable MlpBatch<T> net_;    // cached activations + workspace (guarded by mutex_)
  mutable std::mutex mutex_;
};

}  // namespace refrl
