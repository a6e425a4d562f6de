// Binding of trpo_step.hpp: the whole TRPO / NPG policy update (CG over the native Fisher
// operator, step scaling, backtracking line search with the exact KL and surrogate) in one call.
// Every size and every action index is validated here before any C++ touches the buffers
// (refrl.kernels.trpo_step checks the rest and names the argument); the GIL is released
// around the whole update.
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "bind_checks.hpp"
#include "refrl/trpo_step.hpp"

namespace refrl_bind {
namespace {

using refrl::Index;

template <class T>
void check_len(const std::string& who, const char* name, const CArr<T>& a, Index n) {
  if (a.ndim() != 1 || a.shape(0) != n) fail(who, std::string("'") + name + "' must be a 1-D array of length " + std::to_string(n));
}

template <class T>
py::tuple trpo_step_py(const std::string& who, CArr<T> theta_old, std::vector<Index> sizes, std::string activation,
                       std::string head, std::optional<std::vector<Index>> nvec_opt, CArr<T> obs,
                       std::optional<CArr<std::int64_t>> act_index, std::optional<CArr<T>> act_cont, CArr<T> logp_old,
                       CArr<T> adv, CArr<T> weights, CArr<T> g, double max_kl, Index cg_iters, double cg_tol,
                       double cg_damping, double shrink, Index max_iter, Index subsample, bool line_search,
                       std::string isa_name) {
  const refrl::MlpLayout layout = checked_layout(who, "sizes", sizes);
  const refrl::Activation act = checked_activation(who, activation);
  refrl::PolicyHead h;
  if (head == "categorical") h = refrl::PolicyHead::categorical;
  else if (head == "gaussian") h = refrl::PolicyHead::gaussian;
  else if (head == "multicategorical") h = refrl::PolicyHead::multicategorical;
  else fail(who, "'head' must be 'categorical', 'gaussian' or 'multicategorical', got '" + head + "'");
  const std::vector<Index> nvec = nvec_opt ? *nvec_opt : std::vector<Index>();
  if (const char* err = refrl::fisher_head_error(layout, h, nvec.data(), Index(nvec.size())))
    fail(who, std::string("'nvec': ") + err);
  const Index n = refrl::fisher_num_params(layout, h);
  check_len<T>(who, "theta_old", theta_old, n);
  check_len<T>(who, "g", g, n);
  if (obs.ndim() != 2 || obs.shape(1) != layout.in_dim() || obs.shape(0) < 1)
    fail(who, "'obs' must have shape (B, " + std::to_string(layout.in_dim()) + ") with B >= 1");
  const Index B = obs.shape(0), dL = layout.out_dim();
  check_len<T>(who, "logp_old", logp_old, B);
  check_len<T>(who, "advantages", adv, B);
  check_len<T>(who, "weights", weights, B);
  const std::int64_t* ai = nullptr;
  const T* ac = nullptr;
  if (h == refrl::PolicyHead::gaussian) {
    if (!act_cont || act_index) fail(who, "'actions' must be a float array for the gaussian head");
    if (act_cont->ndim() != 2 || act_cont->shape(0) != B || act_cont->shape(1) != dL)
      fail(who, "'actions' must have shape (" + std::to_string(B) + ", " + std::to_string(dL) + ")");
    ac = act_cont->data();
  } else {
    if (!act_index || act_cont) fail(who, "'actions' must be an int64 array for a categorical head");
    const std::vector<Index> comps = h == refrl::PolicyHead::categorical ? std::vector<Index>{dL} : nvec;
    const Index K = Index(comps.size());
    if (act_index->ndim() != 2 || act_index->shape(0) != B || act_index->shape(1) != K)
      fail(who, "'actions' must have shape (" + std::to_string(B) + ", " + std::to_string(K) + ")");
    ai = act_index->data();
    for (Index b = 0; b < B; ++b)  // never index outside a component's logits
      for (Index k = 0; k < K; ++k)
        if (ai[b * K + k] < 0 || ai[b * K + k] >= comps[std::size_t(k)])
          fail(who, "'actions' out of range at row " + std::to_string(b));
  }
  bool any = false;
  for (Index b = 0; b < B; ++b) any = any || weights.data()[b] != T(0);
  if (!any) fail(who, "'weights' must not all be zero");
  if (!(std::isfinite(max_kl) && max_kl > 0)) fail(who, "'max_kl' must be finite and > 0");
  if (cg_iters < 0) fail(who, "'cg_iters' must be >= 0");
  if (!(std::isfinite(cg_tol) && cg_tol >= 0)) fail(who, "'cg_tol' must be finite and >= 0");
  if (!(std::isfinite(cg_damping) && cg_damping >= 0)) fail(who, "'cg_damping' must be finite and >= 0");
  if (!(shrink > 0 && shrink < 1)) fail(who, "'line_search_shrink' must be in (0, 1)");
  if (max_iter < 1) fail(who, "'line_search_max_iter' must be >= 1");
  if (subsample < 1) fail(who, "'subsample' must be >= 1");
  const refrl::Isa isa = checked_isa(who, isa_name);

  refrl::TrpoStepSettings cfg;
  cfg.max_kl = max_kl;
  cfg.cg_iters = cg_iters;
  cfg.cg_tol = cg_tol;
  cfg.cg_damping = cg_damping;
  cfg.shrink = shrink;
  cfg.max_iter = max_iter;
  cfg.subsample = subsample;
  cfg.line_search = line_search;
  CArr<T> out(n);
  T* op = out.mutable_data();
  const T* th = theta_old.data();
  std::copy(th, th + n, op);  // rejected -> theta_old bit for bit
  refrl::TrpoStepInfo info;
  {
    py::gil_scoped_release release;
    info = refrl::trpo_step<T>(layout, act, h, nvec.data(), Index(nvec.size()), th, B, obs.data(), ai, ac,
                               logp_old.data(), adv.data(), weights.data(), g.data(), cfg, isa, op);
  }
  py::dict d;
  d["status"] = int(info.status);
  d["expected_gain"] = info.expected_gain;
  d["step_fraction"] = info.step_fraction;
  d["cg_iterations"] = info.cg_iterations;
  d["cg_residual"] = info.cg_residual;
  d["cg_status"] = int(info.cg_status);
  d["sFs"] = info.sFs;
  d["beta"] = info.beta;
  d["quadratic_kl"] = info.quadratic_kl;
  d["surrogate_old"] = info.surrogate_old;
  return py::make_tuple(out, info.kl, info.surrogate_gain, info.backtracks, info.accepted, d);
}

template <class T>
void bind_for(py::module_& m, const char* name) {
  const std::string who = name;
  m.def(
      name,
      [who](CArr<T> theta_old, std::vector<Index> sizes, std::string activation, std::string head,
            std::optional<std::vector<Index>> nvec, CArr<T> obs, std::optional<CArr<std::int64_t>> act_index,
            std::optional<CArr<T>> act_cont, CArr<T> logp_old, CArr<T> adv, CArr<T> weights, CArr<T> g, double max_kl,
            Index cg_iters, double cg_tol, double cg_damping, double shrink, Index max_iter, Index subsample,
            bool line_search, std::string isa) {
        return trpo_step_py<T>(who, theta_old, sizes, activation, head, nvec, obs, act_index, act_cont, logp_old, adv,
                               weights, g, max_kl, cg_iters, cg_tol, cg_damping, shrink, max_iter, subsample,
                               line_search, isa);
      },
      py::arg("theta_old").noconvert(), py::arg("sizes"), py::arg("activation"), py::arg("head"), py::arg("nvec"),
      py::arg("obs").noconvert(), py::arg("act_index").noconvert(), py::arg("act_cont").noconvert(),
      py::arg("logp_old").noconvert(), py::arg("advantages").noconvert(), py::arg("weights").noconvert(),
      py::arg("g").noconvert(), py::arg("max_kl"), py::arg("cg_iters"), py::arg("cg_tol"), py::arg("cg_damping"),
      py::arg("line_search_shrink"), py::arg("line_search_max_iter"), py::arg("subsample"), py::arg("line_search"),
      py::arg("isa"),
      "Native TRPO/NPG policy update (use refrl.kernels.trpo_step, which checks arguments). Returns "
      "(theta, kl, surrogate_gain, backtracks, accepted, info dict).");
}

}  // namespace

void bind_trpo(py::module_& m) {
  bind_for<float>(m, "trpo_step_f32");
  bind_for<double>(m, "trpo_step_f64");
  m.attr("TRPO_STATUS") = py::make_tuple("accepted", "rejected", "zero_gradient", "bad_curvature", "cg_non_finite",
                                         "bad_forward");
}

}  // namespace refrl_bind
