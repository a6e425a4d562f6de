#pragma once
// The action distributions of the native policy code: log pi of a sampled action (the acting
// path, act.hpp) and the Fisher block M = the Hessian of KL(pi_old || pi) in the distribution's
// own parameters at pi = pi_old (the Fisher-vector product, fisher.hpp). The NumPy reference of
// every formula is refrl.distributions; the KL itself runs there (the TRPO line search).
//
//   Categorical (logits z [n], p = softmax z):
//     sample:  c_k = sum_{j<=k} exp(z_j - max z),  a = #{k : c_k <= u c_{n-1}} (clamped to n - 1),
//              log pi(a) = z_a - max z - log c_{n-1}          (u uniform in [0, 1): rng.random)
//     Fisher:  M u = p * u - p (p . u)                        (diag(p) - p p^T)
//   MultiCategorical: a Categorical per component block of logits.
//   DiagGaussian (mean mu [d], state-independent log sigma = s [d], bounded to
//   [kLogStdMin, kLogStdMax] as in refrl.distributions):
//     sample:  a = mu + exp(s) eps,  log pi(a) = -1/2 sum eps^2 - sum s - d/2 log 2 pi
//     Fisher:  diag(1/sigma^2) on mu, diag(2) on s, no cross terms (s outside its bounds: 0)
//   Bernoulli (independent bits, logits z [n], p = sigmoid z = exp(-softplus(-z)),
//   softplus(z) = max(z, 0) + log1p(exp(-|z|))):
//     sample:  a_i = [u_i < p_i],  log pi(a) = sum a z - softplus(z)   (u [n] uniform in [0, 1))
//     Fisher:  M u = p (1 - p) u                              (diagonal)
//
// Each distribution is a struct of static functions: sample (acting) and fisher_prepare /
// fisher_block (the operator). Another distribution is another struct with the same entry
// points and a PolicyHead value, dispatched in act's binding and in FisherOperator.
//
// These run in the generic variant (no dispatch): they are a small share of the work next to
// the MLP products, and their results are then those of the baseline build on every CPU.
// No Python, no exceptions, no allocation, no macros.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "refrl/common.hpp"

namespace refrl {

// The distribution heads of a policy network.
enum class PolicyHead : int { categorical = 0, gaussian = 1, multicategorical = 2, bernoulli = 3 };

inline constexpr double kLogStdMin = -20.0;  // = refrl.distributions.LOG_STD_MIN
inline constexpr double kLogStdMax = 2.0;    // = refrl.distributions.LOG_STD_MAX

struct Categorical {
  // Sample and log-probability per row of logits [B, n]; u [B]. The arithmetic mirrors
  // refrl.distributions.Categorical.sample_with_log_prob: exp and the cumulative sum in T,
  // the threshold u * c_{n-1} in double. work: n entries.
  template <class T>
  static void sample(const T* logits, Index B, Index n, const double* u, T* work, std::int64_t* actions, T* logp) {
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

  // p[0, n) = softmax(z[0, n)) at theta_old: what fisher_block needs.
  template <class T>
  static void fisher_prepare(const T* z, Index n, T* p) {
    T zmax = z[0];
    for (Index j = 1; j < n; ++j) zmax = std::max(zmax, z[j]);
    T sum = T(0);
    for (Index j = 0; j < n; ++j) {
      p[j] = std::exp(z[j] - zmax);
      sum += p[j];
    }
    for (Index j = 0; j < n; ++j) p[j] /= sum;
  }

  // u[0, n) <- scale * (diag(p) - p p^T) u.
  template <class T>
  static void fisher_block(const T* p, Index n, T scale, T* u) {
    T pu = T(0);
    for (Index j = 0; j < n; ++j) pu += p[j] * u[j];
    for (Index j = 0; j < n; ++j) u[j] = scale * p[j] * (u[j] - pu);
  }
};

struct DiagGaussian {
  // Entries of theta after the MLP: log sigma [d].
  static Index extra_params(Index d) { return d; }

  // out[j] = clip(log_std[j], lo, hi) (np.clip); false, with out unspecified, if an entry is
  // not finite.
  template <class T>
  static bool bounded_log_std(const T* log_std, Index d, T lo, T hi, T* out) {
    for (Index j = 0; j < d; ++j) {
      if (!std::isfinite(log_std[j])) return false;
      out[j] = std::min(std::max(log_std[j], lo), hi);
    }
    return true;
  }

  // a = mu + exp(log_std) eps and log pi(a) = -1/2 sum eps^2 - const, in double (as NumPy
  // promotes float32 mean with float64 noise), rounded to T on store. mean [B, d], log_std [d]
  // (bounded already), eps [B, d] from rng.standard_normal.
  template <class T>
  static void sample(const T* mean, const T* log_std, Index B, Index d, const double* eps, T* actions, T* logp) {
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

  // The environment's copy of actions [B, d]: min(max(a, low), high) per column (np.clip).
  template <class T>
  static void clip_to_box(const T* actions, Index B, Index d, const T* low, const T* high, T* out) {
    for (Index r = 0; r < B; ++r)
      for (Index j = 0; j < d; ++j) {
        const T v = actions[r * d + j] < low[j] ? low[j] : actions[r * d + j];
        out[r * d + j] = v > high[j] ? high[j] : v;
      }
  }

  // From log sigma [d] at theta_old: inv_var = 1/sigma^2 (log sigma bounded first) and
  // inside = 1 where log sigma is inside its bounds, else 0 (the KL does not depend on it there).
  template <class T>
  static void fisher_prepare(const T* log_std, Index d, T* inv_var, T* inside) {
    for (Index j = 0; j < d; ++j) {
      const double s = double(log_std[j]);
      const double sc = std::min(std::max(s, kLogStdMin), kLogStdMax);
      inv_var[j] = T(std::exp(-2.0 * sc));
      inside[j] = (s < kLogStdMin || s > kLogStdMax) ? T(0) : T(1);
    }
  }

  // u[0, d) <- scale * diag(1/sigma^2) u  (the mean block).
  template <class T>
  static void fisher_block(const T* inv_var, Index d, T scale, T* u) {
    for (Index j = 0; j < d; ++j) u[j] *= scale * inv_var[j];
  }

  // out[0, d) = 2 * inside * v: the log-sigma block, the batch mean of 2 I (shared by all states).
  template <class T>
  static void fisher_log_std_block(const T* inside, Index d, const T* v, T* out) {
    for (Index j = 0; j < d; ++j) out[j] = T(2) * inside[j] * v[j];
  }
};

struct Bernoulli {
  template <class T>
  static T softplus(T z) {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
  }

  // Sample and log-probability per row of logits [B, n]; u [B, n]. As
  // refrl.distributions.Bernoulli: softplus and p in T, the comparison u < p in double (NumPy
  // promotes the float32 p to the float64 u), log pi summed in T.
  template <class T>
  static void sample(const T* logits, Index B, Index n, const double* u, std::int8_t* actions, T* logp) {
    for (Index r = 0; r < B; ++r) {
      T s = T(0);
      for (Index j = 0; j < n; ++j) {
        const T z = logits[r * n + j];
        const bool bit = u[r * n + j] < double(std::exp(-softplus(-z)));
        actions[r * n + j] = bit ? 1 : 0;
        s += (bit ? z : T(0)) - softplus(z);
      }
      logp[r] = s;
    }
  }

  // w[0, n) = p (1 - p) at theta_old: what fisher_block needs.
  template <class T>
  static void fisher_prepare(const T* z, Index n, T* w) {
    for (Index j = 0; j < n; ++j) {
      const T p = std::exp(-softplus(-z[j]));
      w[j] = p * (T(1) - p);
    }
  }

  // u[0, n) <- scale * diag(p (1 - p)) u.
  template <class T>
  static void fisher_block(const T* w, Index n, T scale, T* u) {
    for (Index j = 0; j < n; ++j) u[j] *= scale * w[j];
  }
};

}  // namespace refrl
