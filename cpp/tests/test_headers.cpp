// C++-only test of cpp/include/refrl: the headers compile on their own (no Python) and the
// kernels give the textbook answers. A tiny harness: CHECK counts failures, main returns 1
// if any. Run through ctest (tests/test_cpp_headers.py builds and runs it from pytest).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <limits>
#include <vector>

#include "check.hpp"
#include "refrl/act.hpp"
#include "refrl/adam.hpp"
#include "refrl/cg.hpp"
#include "refrl/common.hpp"
#include "refrl/distributions.hpp"
#include "refrl/fisher.hpp"
#include "refrl/gae.hpp"
#include "refrl/isa.hpp"
#include "refrl/mlp.hpp"
#include "refrl/surrogate.hpp"
#include "refrl/vecmath.hpp"

using refrl::Index;

// Literal GAE in double: the reference for the templated kernel.
static void gae_reference(Index T, Index N, const std::vector<double>& r, const std::vector<double>& v,
                          const std::vector<double>& vn, const std::vector<std::uint8_t>& term,
                          const std::vector<std::uint8_t>& trunc, double gamma, double lam, std::vector<double>& adv) {
  adv.assign(static_cast<std::size_t>(T * N), 0.0);
  for (Index n = 0; n < N; ++n) {
    double next = 0.0;
    for (Index t = T - 1; t >= 0; --t) {
      const std::size_t i = static_cast<std::size_t>(t * N + n);
      const double boot = term[i] ? 0.0 : vn[i];
      const double delta = r[i] + gamma * boot - v[i];
      next = delta + gamma * lam * ((term[i] || trunc[i]) ? 0.0 : next);
      adv[i] = next;
    }
  }
}

template <class T>
static void test_gae(double tol) {
  const Index n_steps = 5, n_envs = 3, size = n_steps * n_envs;
  std::vector<double> r(size), v(size), vn(size);
  std::vector<std::uint8_t> term(size, 0), trunc(size, 0);
  for (Index i = 0; i < size; ++i) {
    r[i] = std::sin(0.7 * static_cast<double>(i));
    v[i] = std::cos(0.3 * static_cast<double>(i));
    vn[i] = std::cos(0.3 * static_cast<double>(i + 1)) + 0.1;
  }
  term[1 * n_envs + 0] = 1;   // env 0 terminates at t = 1
  trunc[2 * n_envs + 1] = 1;  // env 1 is truncated at t = 2
  term[4 * n_envs + 2] = 1;   // env 2: both flags at the last step
  trunc[4 * n_envs + 2] = 1;
  vn[1 * n_envs + 0] = std::numeric_limits<double>::infinity();  // never read: terminal step
  std::vector<double> want;
  gae_reference(n_steps, n_envs, r, v, vn, term, trunc, 0.99, 0.95, want);
  std::vector<T> rt(r.begin(), r.end()), vt(v.begin(), v.end()), vnt(vn.begin(), vn.end());
  std::vector<T> adv(size), ret(size);
  refrl::gae<T>(n_steps, n_envs, rt.data(), vt.data(), vnt.data(), term.data(), trunc.data(), T(0.99), T(0.95),
                adv.data(), ret.data());
  for (Index i = 0; i < size; ++i) {
    CHECK_NEAR(adv[i], want[i], tol);
    CHECK_NEAR(ret[i], static_cast<double>(adv[i]) + static_cast<double>(vt[i]), tol);
  }
  // truncation bootstraps from V(s'), termination does not: one step, r = 1, V = 0, V(s') = 10
  const T one = T(1), zero = T(0), ten = T(10);
  const std::uint8_t yes = 1, no = 0;
  T a = 0, re = 0;
  refrl::gae<T>(1, 1, &one, &zero, &ten, &no, &yes, T(0.9), T(0.5), &a, &re);
  CHECK_NEAR(a, 10.0, tol);
  refrl::gae<T>(1, 1, &one, &zero, &ten, &yes, &no, T(0.9), T(0.5), &a, &re);
  CHECK_NEAR(a, 1.0, tol);
  // lambda = 1 is the discounted Monte-Carlo return minus V (episode terminating at the end)
  const T rr[3] = {T(1), T(2), T(3)}, vv[3] = {T(0.5), T(0.25), T(-1)}, nv[3] = {T(0.25), T(-1), T(7)};
  const std::uint8_t tm[3] = {0, 0, 1}, tr[3] = {0, 0, 0};
  T aa[3], rets[3];
  refrl::gae<T>(3, 1, rr, vv, nv, tm, tr, T(0.5), T(1), aa, rets);
  CHECK_NEAR(aa[0], 1 + 0.5 * 2 + 0.25 * 3 - 0.5, tol);
  CHECK_NEAR(rets[0], 1 + 0.5 * 2 + 0.25 * 3, tol);
  // lambda = 0 is the TD residual
  refrl::gae<T>(3, 1, rr, vv, nv, tm, tr, T(0.5), T(0), aa, rets);
  CHECK_NEAR(aa[0], 1 + 0.5 * 0.25 - 0.5, tol);
  CHECK_NEAR(aa[1], 2 + 0.5 * -1 - 0.25, tol);
  CHECK_NEAR(aa[2], 3 - -1.0, tol);
  // every env count 1..20 (blocks of 8, 4 and 1 env) against the literal loop
  for (Index n_envs2 = 1; n_envs2 <= 20; ++n_envs2) {
    const Index steps2 = 7, size2 = steps2 * n_envs2;
    std::vector<double> r2(size2), v2(size2), vn2(size2), want2;
    std::vector<std::uint8_t> te2(size2), tr2(size2);
    for (Index i = 0; i < size2; ++i) {
      r2[i] = std::sin(1.3 * static_cast<double>(i));
      v2[i] = std::cos(0.7 * static_cast<double>(i));
      vn2[i] = std::sin(0.4 * static_cast<double>(i) + 1.0);
      te2[i] = static_cast<std::uint8_t>(i % 11 == 3);
      tr2[i] = static_cast<std::uint8_t>(i % 7 == 5 ? 2 : 0);  // any nonzero byte is true
    }
    gae_reference(steps2, n_envs2, r2, v2, vn2, te2, tr2, 0.97, 0.9, want2);
    std::vector<T> rt2(r2.begin(), r2.end()), vt2(v2.begin(), v2.end()), vnt2(vn2.begin(), vn2.end());
    std::vector<T> adv2(size2), ret2(size2);
    refrl::gae<T>(steps2, n_envs2, rt2.data(), vt2.data(), vnt2.data(), te2.data(), tr2.data(), T(0.97), T(0.9),
                  adv2.data(), ret2.data());
    for (Index i = 0; i < size2; ++i) CHECK_NEAR(adv2[i], want2[i], tol);
  }
  // empty rollouts write nothing and read nothing
  refrl::gae<T>(0, 4, nullptr, nullptr, nullptr, nullptr, nullptr, T(0.9), T(0.9), nullptr, nullptr);
}

template <class T>
static void test_surrogate(double tol) {
  // the source text's worked examples, eps = 0.2
  const T logp[3] = {static_cast<T>(std::log(1.5)), static_cast<T>(std::log(0.7)), static_cast<T>(std::log(1.4))};
  const T logp_old[3] = {T(0), T(0), T(0)};
  const T adv[3] = {T(1), T(-1), T(-2)};
  const double want[3] = {1.2, -0.8, -2.8};
  const double want_grad[3] = {0.0, 0.0, -2.8};  // only example 3 takes the unclipped branch
  for (int i = 0; i < 3; ++i) {
    T g = 0;
    const refrl::SurrogateStats s = refrl::clipped_surrogate<T>(1, logp + i, logp_old + i, adv + i, nullptr, T(0.2), &g);
    CHECK_NEAR(s.objective, want[i], tol);
    CHECK_NEAR(g, want_grad[i], tol);
    CHECK_NEAR(s.clip_fraction, 1.0, 0.0);  // all three ratios lie outside [0.8, 1.2]
  }
  // all three at once: the mean, and a zero weight skips a sample holding NaN
  const T logp4[4] = {logp[0], logp[1], logp[2], std::numeric_limits<T>::quiet_NaN()};
  const T old4[4] = {T(0), T(0), T(0), T(0)};
  const T adv4[4] = {T(1), T(-1), T(-2), std::numeric_limits<T>::quiet_NaN()};
  const T w4[4] = {T(1), T(1), T(1), T(0)};
  T g4[4];
  const refrl::SurrogateStats s = refrl::clipped_surrogate<T>(4, logp4, old4, adv4, w4, T(0.2), g4);
  CHECK_NEAR(s.objective, (1.2 - 0.8 - 2.8) / 3.0, tol);
  CHECK_NEAR(g4[2], -2.8 / 3.0, tol);
  CHECK(g4[3] == T(0));
  CHECK_NEAR(s.ratio_min, 0.7, tol);
  CHECK_NEAR(s.ratio_max, 1.5, tol);
  CHECK_NEAR(s.ratio_mean, (1.5 + 0.7 + 1.4) / 3.0, tol);
  const double kl = ((0.5 - std::log(1.5)) + (-0.3 - std::log(0.7)) + (0.4 - std::log(1.4))) / 3.0;
  CHECK_NEAR(s.approx_kl, kl, tol);
  CHECK_NEAR(s.weight_sum, 3.0, 0.0);
  // all weights zero: nothing computed, reported through weight_sum
  const T w0[1] = {T(0)};
  T g0 = T(5);
  const refrl::SurrogateStats s0 = refrl::clipped_surrogate<T>(1, logp, logp_old, adv, w0, T(0.2), &g0);
  CHECK(!(s0.weight_sum > 0.0));
  CHECK(std::isnan(s0.objective));
  CHECK(g0 == T(0));
  CHECK(s0.invalid_weights == 0);
  CHECK(s.invalid_weights == 0);
  // a negative, a NaN and an inf weight among valid ones: counted, nothing computed
  const T bad_w[3][4] = {{T(1), T(-0.5), T(1), T(0)},
                         {T(1), T(1), std::numeric_limits<T>::quiet_NaN(), T(0)},
                         {std::numeric_limits<T>::infinity(), T(1), T(1), T(0)}};
  for (const auto& wb : bad_w) {
    T gb[4] = {T(7), T(7), T(7), T(7)};
    const refrl::SurrogateStats sb = refrl::clipped_surrogate<T>(4, logp4, old4, adv4, wb, T(0.2), gb);
    CHECK(sb.invalid_weights == 1);
    CHECK(std::isnan(sb.objective) && std::isnan(sb.approx_kl) && std::isnan(sb.ratio_max));
    for (const T v : gb) CHECK(v == T(0));
  }
  // weights each finite whose sum overflows double: nothing computed either
  if constexpr (sizeof(T) == sizeof(double)) {
    const T big[2] = {std::numeric_limits<T>::max(), std::numeric_limits<T>::max()};
    T gbig[2] = {T(7), T(7)};
    const refrl::SurrogateStats so = refrl::clipped_surrogate<T>(2, logp4, old4, adv4, big, T(0.2), gbig);
    CHECK(so.invalid_weights == 0);
    CHECK(!(so.weight_sum <= std::numeric_limits<double>::max()));
    CHECK(std::isnan(so.objective) && gbig[0] == T(0) && gbig[1] == T(0));
  }
}

// Every batch size 1..70 (vector bodies and tails), with and without weights, against a
// literal double-precision loop: catches a vectorised loop that drops or mixes lanes.
template <class T>
static void test_surrogate_sizes(double tol) {
  for (Index batch = 1; batch <= 70; ++batch) {
    std::vector<T> lp(batch), lo(batch), ad(batch), w(batch), g(batch), gw(batch);
    for (Index i = 0; i < batch; ++i) {
      const double x = static_cast<double>(i);
      lo[i] = static_cast<T>(-1.0 + 0.1 * std::sin(x));
      lp[i] = static_cast<T>(static_cast<double>(lo[i]) + 0.4 * std::sin(1.7 * x + 0.3));
      ad[i] = static_cast<T>(std::cos(2.3 * x));
      w[i] = static_cast<T>((i % 3 == 1) ? 0.0 : 0.5 + 0.25 * static_cast<double>(i % 4));
    }
    for (int weighted = 0; weighted < 2; ++weighted) {
      const T* wp = weighted ? w.data() : nullptr;
      double ws = 0, obj = 0, clip = 0, kl = 0, rs = 0, rmin = 1e300, rmax = -1e300;
      for (Index i = 0; i < batch; ++i) ws += wp ? static_cast<double>(w[i]) : 1.0;
      for (Index i = 0; i < batch; ++i) {
        const double wi = wp ? static_cast<double>(w[i]) : 1.0;
        if (wi == 0.0) continue;
        const double lr = static_cast<double>(lp[i]) - static_cast<double>(lo[i]);
        const double r = std::exp(lr);
        const double a = static_cast<double>(ad[i]);
        const double rc = std::max(0.8, std::min(r, 1.2));
        obj += wi * std::min(r * a, rc * a);
        clip += std::fabs(r - 1.0) > 0.2 ? wi : 0.0;
        kl += wi * ((r - 1.0) - lr);
        rs += wi * r;
        rmin = std::min(rmin, r);
        rmax = std::max(rmax, r);
      }
      const refrl::SurrogateStats s =
          refrl::clipped_surrogate<T>(batch, lp.data(), lo.data(), ad.data(), wp, T(0.2), g.data());
      CHECK_NEAR(s.objective, obj / ws, tol);
      CHECK_NEAR(s.clip_fraction, clip / ws, 1e-12);
      CHECK_NEAR(s.approx_kl, kl / ws, tol);
      CHECK_NEAR(s.ratio_mean, rs / ws, tol);
      CHECK_NEAR(s.ratio_min, rmin, tol);
      CHECK_NEAR(s.ratio_max, rmax, tol);
      CHECK_NEAR(s.weight_sum, ws, 1e-9);
    }
  }
}

template <class T>
static void test_cg(double tol) {
  // SPD 3x3 with known solution x* = (1, -2, 0.5)
  const T a[9] = {T(4), T(1), T(0), T(1), T(3), T(-1), T(0), T(-1), T(2)};
  const T x_true[3] = {T(1), T(-2), T(0.5)};
  T b[3];
  for (int i = 0; i < 3; ++i) b[i] = a[3 * i] * x_true[0] + a[3 * i + 1] * x_true[1] + a[3 * i + 2] * x_true[2];
  const refrl::DenseOperator<T> op(3, a);
  T x[3];
  const refrl::CGInfo<T> info = refrl::conjugate_gradient<T>(op, b, 10, T(1e-20), T(0), x);
  CHECK(info.status == refrl::CGStatus::converged || info.status == refrl::CGStatus::max_iterations);
  CHECK(info.iterations <= 10);
  for (int i = 0; i < 3; ++i) CHECK_NEAR(x[i], x_true[i], tol);
  // damping: (A + 0.5 I) x = b through a lambda operator
  std::vector<T> work(9);
  auto apply = [&op](const T* v, T* out) {
    op.apply(v, out);
    return true;
  };
  const refrl::CGInfo<T> info_d =
      refrl::conjugate_gradient<T>(apply, 3, b, 10, T(1e-20), T(0.5), x, work.data());
  for (int i = 0; i < 3; ++i) {
    const double ax = a[3 * i] * x[0] + a[3 * i + 1] * x[1] + a[3 * i + 2] * x[2] + 0.5 * x[i];
    CHECK_NEAR(ax, b[i], 10 * tol);
  }
  CHECK(info_d.iterations >= 1);
  // indefinite A = diag(1, -1): reported, not silently wrong
  const T ind[4] = {T(1), T(0), T(0), T(-1)};
  const T b2[2] = {T(1), T(1)};
  T x2[2];
  const refrl::CGInfo<T> info_i = refrl::conjugate_gradient<T>(refrl::DenseOperator<T>(2, ind), b2, 10, T(1e-20), T(0), x2);
  CHECK(info_i.status == refrl::CGStatus::not_positive_definite);
  CHECK(info_i.iterations == 0);
  // an apply that fails stops the solve with the last good x
  auto failing = [](const T*, T*) { return false; };
  const refrl::CGInfo<T> info_f = refrl::conjugate_gradient<T>(failing, 2, b2, 10, T(0), T(0), x2, work.data());
  CHECK(info_f.status == refrl::CGStatus::operator_failed);
  CHECK(x2[0] == T(0) && x2[1] == T(0));
  // b = 0 converges at once to x = 0
  const T zeros[3] = {T(0), T(0), T(0)};
  const refrl::CGInfo<T> info_z = refrl::conjugate_gradient<T>(op, zeros, 10, T(1e-10), T(0), x);
  CHECK(info_z.status == refrl::CGStatus::converged && info_z.iterations == 0);
}

// Adam: two steps against Algorithm 1 written out in double, over lengths that cover the
// vector body and its tail; the gradient is read only.
template <class T>
static void test_adam(double tol) {
  for (Index n = 1; n <= 37; n += 3) {
    std::vector<T> theta(n), g(n), m(n, T(0)), v(n, T(0));
    std::vector<double> th_ref(n), m_ref(n, 0.0), v_ref(n, 0.0);
    for (Index i = 0; i < n; ++i) {
      theta[i] = static_cast<T>(0.1 * static_cast<double>(i) - 1.0);
      th_ref[i] = static_cast<double>(theta[i]);
    }
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-5;
    for (long long t = 1; t <= 2; ++t) {
      for (Index i = 0; i < n; ++i) g[i] = static_cast<T>(std::sin(static_cast<double>(i + t)));
      const std::vector<T> g_before = g;
      refrl::adam_step<T>(n, theta.data(), g.data(), m.data(), v.data(), t, lr, b1, b2, eps);
      CHECK(g == g_before);
      for (Index i = 0; i < n; ++i) {
        const double gi = static_cast<double>(g[i]);
        m_ref[i] = b1 * m_ref[i] + (1 - b1) * gi;
        v_ref[i] = b2 * v_ref[i] + (1 - b2) * gi * gi;
        const double m_hat = m_ref[i] / (1 - std::pow(b1, static_cast<double>(t)));
        const double v_hat = v_ref[i] / (1 - std::pow(b2, static_cast<double>(t)));
        th_ref[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
      }
    }
    for (Index i = 0; i < n; ++i) {
      CHECK_NEAR(theta[i], th_ref[i], tol);
      CHECK_NEAR(m[i], m_ref[i], tol);
      CHECK_NEAR(v[i], v_ref[i], tol);
    }
  }
}

// The one vectorised exp and the tanh built on it, against the library's, relative error in
// units of the type's epsilon (the Python tests check the same in every kernel variant).
template <class T>
static void test_exp_tanh() {
  const double eps = std::numeric_limits<T>::epsilon();
  const double hi = sizeof(T) == 8 ? 709.0 : 88.0, lo = sizeof(T) == 8 ? -708.0 : -87.0;  // normal results
  for (int i = 0; i <= 4000; ++i) {
    const T x = static_cast<T>(lo + (hi - lo) * i / 4000.0);
    const double want = std::exp(static_cast<double>(x));
    CHECK(std::fabs(static_cast<double>(refrl::detail::vexp(x)) - want) <= 4 * eps * want);
  }
  CHECK(refrl::detail::vexp(T(0)) == T(1));
  CHECK(std::isinf(refrl::detail::vexp(T(1000))) && refrl::detail::vexp(T(-1000)) == T(0));
  CHECK(std::isnan(refrl::detail::vexp(std::numeric_limits<T>::quiet_NaN())));
  std::vector<T> h(64 * 40);  // 40 rows of 64 values: whole vectors of every width
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<T>(-15.0 + 30.0 * static_cast<double>(i) / static_cast<double>(h.size()));
  const std::vector<T> x = h;
  refrl::detail::tanh_row<T, 64>(h.data(), static_cast<Index>(h.size()));
  for (std::size_t i = 0; i < h.size(); ++i) {
    const double want = std::tanh(static_cast<double>(x[i]));
    CHECK(std::fabs(static_cast<double>(h[i]) - want) <= 4 * eps * std::max(std::fabs(want), 1e-30));
  }
}

static void test_isa() {
  const refrl::Isa isa = refrl::kernel_isa();
  CHECK(refrl::isa_supported(isa) && refrl::isa_supported(refrl::Isa::generic));
  CHECK(static_cast<int>(isa) <= static_cast<int>(refrl::best_isa()));
  for (refrl::Isa i : {refrl::Isa::generic, refrl::Isa::avx2, refrl::Isa::avx512}) {
    refrl::Isa back = refrl::Isa::generic;
    CHECK(refrl::isa_from_name(refrl::isa_name(i), &back) && back == i);
  }
  refrl::Isa untouched = refrl::Isa::avx2;
  CHECK(!refrl::isa_from_name("sse9", &untouched) && untouched == refrl::Isa::avx2);
}

// The native MLP (forward, J v, J^T u), the acting network and the Fisher operator in every
// supported variant, against a literal forward pass in double and the identities they obey:
// <u, J v> = <J^T u, v>; F symmetric positive semi-definite; the Gaussian log-sigma block 2 v.
template <class T>
static void test_mlp_act_fisher(double tol) {
  const Index sizes[] = {3, 40, 70, 4};  // 70: a row that is not a whole number of vectors
  const refrl::MlpLayout lay = refrl::mlp_layout(sizes, 4);
  CHECK(refrl::mlp_layout_error(sizes, 4) == nullptr);
  const Index P = lay.num_params, B = 9, d = 4;
  std::vector<T> theta(static_cast<std::size_t>(P + d)), x(static_cast<std::size_t>(B * 3));
  for (Index i = 0; i < P + d; ++i) theta[i] = static_cast<T>(0.3 * std::sin(1.7 * static_cast<double>(i)));
  for (Index i = 0; i < B * 3; ++i) x[i] = static_cast<T>(std::cos(0.9 * static_cast<double>(i)));
  std::vector<double> want(static_cast<std::size_t>(B * d));
  for (Index b = 0; b < B; ++b) {
    std::vector<double> h(x.begin() + b * 3, x.begin() + b * 3 + 3);
    for (Index l = 1; l <= 3; ++l) {
      std::vector<double> z(static_cast<std::size_t>(sizes[l]));
      for (Index j = 0; j < sizes[l]; ++j) {
        double s = theta[lay.b_offset[l - 1] + j];
        for (Index i = 0; i < sizes[l - 1]; ++i) s += h[i] * theta[lay.w_offset[l - 1] + i * sizes[l] + j];
        z[j] = l < 3 ? std::tanh(s) : s;
      }
      h = z;
    }
    for (Index j = 0; j < d; ++j) want[b * d + j] = h[j];
  }
  std::vector<T> v(static_cast<std::size_t>(P + d)), u(static_cast<std::size_t>(B * d));
  for (Index i = 0; i < P + d; ++i) v[i] = static_cast<T>(std::cos(0.37 * static_cast<double>(i)));
  for (Index i = 0; i < B * d; ++i) u[i] = static_cast<T>(std::sin(0.53 * static_cast<double>(i)));
  for (refrl::Isa isa : {refrl::Isa::generic, refrl::Isa::avx2, refrl::Isa::avx512}) {
    if (!refrl::isa_supported(isa)) continue;
    refrl::MlpBatch<T> mb;
    refrl::mlp_batch_init<T>(mb, lay, refrl::Activation::tanh, isa, theta.data(), B, x.data(), 3);
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < d; ++j) CHECK_NEAR(refrl::mlp_output(mb, b, j), want[b * d + j], tol);
    std::vector<T> jv(static_cast<std::size_t>(B * d)), jtu(static_cast<std::size_t>(P));
    refrl::mlp_jvp<T>(mb, v.data(), jv.data());
    refrl::mlp_vjp<T>(mb, u.data(), jtu.data());
    double uJv = 0, Jtuv = 0;
    for (Index i = 0; i < B * d; ++i) uJv += double(u[i]) * double(jv[i]);
    for (Index i = 0; i < P; ++i) Jtuv += double(jtu[i]) * double(v[i]);
    CHECK_NEAR(uJv, Jtuv, tol * 100);

    const Index vf_sizes[] = {3, 40, 70, 1};
    const refrl::MlpLayout vf = refrl::mlp_layout(vf_sizes, 4);
    std::vector<T> th2(theta.begin(), theta.begin() + P);  // the value net: the policy's first layers
    th2.insert(th2.end(), theta.begin(), theta.begin() + vf.num_params);
    const refrl::ActNets nets = refrl::act_nets(lay, vf, P, refrl::Activation::tanh, isa);
    std::vector<T> pi(static_cast<std::size_t>(B * d)), val(static_cast<std::size_t>(B));
    refrl::act_forward<T>(nets, th2.data(), B, x.data(), pi.data(), val.data());
    for (Index i = 0; i < B * d; ++i) CHECK_NEAR(pi[i], want[i], tol);
    CHECK(refrl::all_finite(pi.data(), B * d) && refrl::all_finite(val.data(), B));

    for (refrl::PolicyHead head : {refrl::PolicyHead::categorical, refrl::PolicyHead::gaussian}) {
      const refrl::FisherOperator<T> F(lay, refrl::Activation::tanh, head, nullptr, 0, theta.data(), B, x.data(), 3, 1,
                                       T(0), isa);
      const Index n = F.size();
      CHECK(n == refrl::fisher_num_params(lay, head));
      std::vector<T> a(static_cast<std::size_t>(n)), c(static_cast<std::size_t>(n));
      std::vector<T> Fa(static_cast<std::size_t>(n)), Fc(static_cast<std::size_t>(n));
      for (Index i = 0; i < n; ++i) {
        a[i] = v[i];
        c[i] = static_cast<T>(std::sin(0.71 * static_cast<double>(i)));
      }
      F.apply(a.data(), Fa.data());
      F.apply(c.data(), Fc.data());
      double cFa = 0, aFc = 0, aFa = 0;
      for (Index i = 0; i < n; ++i) {
        cFa += double(c[i]) * double(Fa[i]);
        aFc += double(a[i]) * double(Fc[i]);
        aFa += double(a[i]) * double(Fa[i]);
      }
      CHECK_NEAR(cFa, aFc, tol * 100 * (1 + std::fabs(cFa)));
      CHECK(aFa >= -tol);
      if (head == refrl::PolicyHead::gaussian)
        for (Index j = 0; j < d; ++j) CHECK_NEAR(Fa[P + j], 2 * double(a[P + j]), tol);
    }
  }
}

int main() {
  test_isa();
  test_exp_tanh<double>();
  test_exp_tanh<float>();
  test_mlp_act_fisher<double>(1e-12);
  test_mlp_act_fisher<float>(1e-4);
  test_adam<double>(1e-12);
  test_adam<float>(1e-6);
  test_gae<double>(1e-12);
  test_gae<float>(1e-4);
  test_surrogate<double>(1e-12);
  test_surrogate<float>(1e-5);
  test_surrogate_sizes<double>(1e-12);
  test_surrogate_sizes<float>(1e-5);
  test_cg<double>(1e-9);
  test_cg<float>(1e-4);
  std::printf("test_headers: %d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
