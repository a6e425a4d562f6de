// C++-only test of trpo_step.hpp (no Python): a linear softmax policy z = x W + b on a small
// batch, with the policy gradient g written out by hand. Checks the guarantees of the step:
// an accepted step has mean KL <= delta (recomputed here from theta, independently of the
// header) and a positive surrogate gain; the step along -g is rejected and out_theta is left
// bit for bit as it was; NPG mode takes the full step. Returns 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "refrl/trpo_step.hpp"

using refrl::Index;

// log softmax of the logits of row b of x at theta (layout: W [d0, n] row-major, then b [n])
template <class T>
static void log_softmax_row(const std::vector<T>& theta, const T* x, Index d0, Index n, double* out) {
  double zmax = -1e300;
  for (Index j = 0; j < n; ++j) {
    double z = double(theta[std::size_t(d0 * n + j)]);
    for (Index i = 0; i < d0; ++i) z += double(x[i]) * double(theta[std::size_t(i * n + j)]);
    out[j] = z;
    zmax = std::max(zmax, z);
  }
  double s = 0.0;
  for (Index j = 0; j < n; ++j) s += std::exp(out[j] - zmax);
  for (Index j = 0; j < n; ++j) out[j] -= zmax + std::log(s);
}

template <class T>
static void test_trpo_step_linear_softmax() {
  const Index d0 = 2, n = 3, B = 8;
  const std::vector<Index> sizes = {d0, n};
  const refrl::MlpLayout layout = refrl::mlp_layout(sizes.data(), Index(sizes.size()));
  const Index P = layout.num_params;  // 9
  std::vector<T> theta(static_cast<std::size_t>(P)), obs(static_cast<std::size_t>(B * d0)), logp_old(static_cast<std::size_t>(B)), adv(static_cast<std::size_t>(B)),
      w(static_cast<std::size_t>(B), T(1)), g(static_cast<std::size_t>(P), T(0));
  std::vector<std::int64_t> act(static_cast<std::size_t>(B));
  for (Index i = 0; i < P; ++i) theta[std::size_t(i)] = T(0.3 * std::sin(1.7 * double(i) + 0.4));
  for (Index b = 0; b < B; ++b) {
    obs[std::size_t(b * d0)] = T(std::cos(0.9 * double(b)));
    obs[std::size_t(b * d0 + 1)] = T(std::sin(1.3 * double(b) + 0.2));
    act[std::size_t(b)] = std::int64_t(b % n);
    adv[std::size_t(b)] = T(std::sin(2.1 * double(b) + 1.0));
  }
  w[3] = T(0);  // a reset slot: not part of the batch
  double w_sum = 0.0;
  for (Index b = 0; b < B; ++b) w_sum += double(w[std::size_t(b)]);
  // logp_old and g = (1/sum w) sum_b w_b A_b d log pi(a_b|s_b) / d theta, with d/dz = onehot(a) - p
  std::vector<double> lp(static_cast<std::size_t>(n));
  for (Index b = 0; b < B; ++b) {
    const T* x = obs.data() + b * d0;
    log_softmax_row<T>(theta, x, d0, n, lp.data());
    logp_old[std::size_t(b)] = T(lp[std::size_t(act[std::size_t(b)])]);
    const double c = double(w[std::size_t(b)]) * double(adv[std::size_t(b)]) / w_sum;
    for (Index j = 0; j < n; ++j) {
      const double dz = c * ((j == act[std::size_t(b)] ? 1.0 : 0.0) - std::exp(lp[std::size_t(j)]));
      for (Index i = 0; i < d0; ++i) g[std::size_t(i * n + j)] += T(dz * double(x[i]));
      g[std::size_t(d0 * n + j)] += T(dz);
    }
  }
  auto mean_kl = [&](const std::vector<T>& th) {  // independent of the header's KL code
    std::vector<double> lq(static_cast<std::size_t>(n));
    double kl = 0.0;
    for (Index b = 0; b < B; ++b) {
      if (w[std::size_t(b)] == T(0)) continue;
      log_softmax_row<T>(theta, obs.data() + b * d0, d0, n, lp.data());
      log_softmax_row<T>(th, obs.data() + b * d0, d0, n, lq.data());
      for (Index j = 0; j < n; ++j) kl += std::exp(lp[std::size_t(j)]) * (lp[std::size_t(j)] - lq[std::size_t(j)]);
    }
    return kl / w_sum;
  };

  refrl::TrpoStepSettings cfg;
  cfg.max_kl = 0.01;
  cfg.cg_iters = 10;
  cfg.cg_damping = 0.1;
  cfg.shrink = 0.5;
  cfg.max_iter = 10;
  const auto isa = refrl::best_isa();
  // along +g: accepted, KL <= delta (recomputed), gain > 0
  std::vector<T> out(theta);
  refrl::TrpoStepInfo info =
      refrl::trpo_step<T>(layout, refrl::Activation::tanh, refrl::PolicyHead::categorical, nullptr, 0, theta.data(), B,
                          obs.data(), act.data(), nullptr, logp_old.data(), adv.data(), w.data(), g.data(), cfg, isa,
                          out.data());
  CHECK(info.accepted && info.status == refrl::TrpoStatus::accepted);
  CHECK(info.kl > 0.0 && info.kl <= cfg.max_kl);
  CHECK(info.surrogate_gain > 0.0);
  CHECK(std::fabs(info.quadratic_kl - cfg.max_kl) <= 1e-9 * cfg.max_kl);
  CHECK(std::fabs(mean_kl(out) - info.kl) <= (sizeof(T) == 8 ? 1e-10 : 1e-5));
  CHECK(mean_kl(out) <= cfg.max_kl * (1.0 + (sizeof(T) == 8 ? 1e-9 : 1e-3)));
  CHECK(std::memcmp(out.data(), theta.data(), sizeof(T) * std::size_t(P)) != 0);
  // along -g: every try lowers the surrogate -> rejected, out untouched bit for bit
  std::vector<T> neg(g);
  for (T& v : neg) v = -v;
  std::vector<T> out2(theta);
  info = refrl::trpo_step<T>(layout, refrl::Activation::tanh, refrl::PolicyHead::categorical, nullptr, 0, theta.data(), B,
                             obs.data(), act.data(), nullptr, logp_old.data(), adv.data(), w.data(), neg.data(), cfg, isa,
                             out2.data());
  CHECK(!info.accepted && info.status == refrl::TrpoStatus::rejected);
  CHECK(info.backtracks == cfg.max_iter);
  CHECK(info.kl == 0.0 && info.surrogate_gain == 0.0);
  CHECK(std::memcmp(out2.data(), theta.data(), sizeof(T) * std::size_t(P)) == 0);
  // NPG: the full step, whatever its KL
  cfg.line_search = false;
  cfg.max_kl = 0.5;
  std::vector<T> out3(theta);
  info = refrl::trpo_step<T>(layout, refrl::Activation::tanh, refrl::PolicyHead::categorical, nullptr, 0, theta.data(), B,
                             obs.data(), act.data(), nullptr, logp_old.data(), adv.data(), w.data(), g.data(), cfg, isa,
                             out3.data());
  CHECK(info.accepted && info.backtracks == 0 && info.step_fraction == 1.0);
  // zero gradient: no step
  std::vector<T> zero(static_cast<std::size_t>(P), T(0)), out4(theta);
  info = refrl::trpo_step<T>(layout, refrl::Activation::tanh, refrl::PolicyHead::categorical, nullptr, 0, theta.data(), B,
                             obs.data(), act.data(), nullptr, logp_old.data(), adv.data(), w.data(), zero.data(), cfg, isa,
                             out4.data());
  CHECK(!info.accepted && info.status == refrl::TrpoStatus::zero_gradient);
  CHECK(std::memcmp(out4.data(), theta.data(), sizeof(T) * std::size_t(P)) == 0);
}

int main() {
  test_trpo_step_linear_softmax<double>();
  test_trpo_step_linear_softmax<float>();
  std::printf("test_trpo_step: %d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
