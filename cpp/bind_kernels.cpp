// Bindings of gae, clipped_surrogate, conjugate_gradient and adam_step (float and double).
// Thin: refrl.kernels has already validated and converted everything; these functions only
// re-check what guards memory safety (ndim, equal shapes, contiguity via c_style +
// noconvert: no silent copies), release the GIL and call the header (which picks the
// instruction-set variant, isa.hpp).
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "refrl/adam.hpp"
#include "refrl/cg.hpp"
#include "refrl/gae.hpp"
#include "refrl/surrogate.hpp"
#include "refrl/vecmath.hpp"

namespace refrl_bind {
namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style>;
using Flags = py::array_t<std::uint8_t, py::array::c_style>;

template <class A>
void require_shape(const A& a, const char* name, py::ssize_t ndim, const py::ssize_t* shape) {
  if (a.ndim() != ndim) throw py::value_error(std::string("'") + name + "' has the wrong number of dimensions");
  for (py::ssize_t d = 0; d < ndim; ++d)
    if (a.shape(d) != shape[d]) throw py::value_error(std::string("'") + name + "' has the wrong shape");
}

// Whether the byte ranges of two arrays overlap (adam_step updates three of them in place).
template <class A, class B>
bool overlap(const A& a, const B& b) {
  const auto* a0 = reinterpret_cast<const char*>(a.data());
  const auto* b0 = reinterpret_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

template <class T>
void adam_binding(Arr<T> params, const Arr<T>& grads, Arr<T> m, Arr<T> v, long long t, double lr, double beta1,
                  double beta2, double eps) {
  if (t < 1) throw py::value_error("'t' must be >= 1");
  if (params.ndim() != 1) throw py::value_error("'params' must be 1-D");
  const py::ssize_t shape[1] = {params.shape(0)};
  require_shape(grads, "grads", 1, shape);
  require_shape(m, "m", 1, shape);
  require_shape(v, "v", 1, shape);
  if (overlap(params, grads) || overlap(params, m) || overlap(params, v) || overlap(m, v) || overlap(m, grads) ||
      overlap(v, grads))
    throw py::value_error("'params', 'grads', 'm' and 'v' must not share memory");
  T* th = params.mutable_data();  // raises if not writeable
  T* mp = m.mutable_data();
  T* vp = v.mutable_data();
  const T* g = grads.data();
  py::gil_scoped_release nogil;
  refrl::adam_step<T>(shape[0], th, g, mp, vp, t, lr, beta1, beta2, eps);
}

template <class T>
py::tuple gae_binding(const Arr<T>& rewards, const Arr<T>& values, const Arr<T>& next_values,
                      const Flags& terminated, const Flags& truncated, double gamma, double lam) {
  if (rewards.ndim() != 2) throw py::value_error("'rewards' must be 2-D [T, N]");
  const py::ssize_t shape[2] = {rewards.shape(0), rewards.shape(1)};
  require_shape(values, "values", 2, shape);
  require_shape(next_values, "next_values", 2, shape);
  require_shape(terminated, "terminated", 2, shape);
  require_shape(truncated, "truncated", 2, shape);
  Arr<T> adv({shape[0], shape[1]});
  Arr<T> ret({shape[0], shape[1]});
  const T* r = rewards.data();
  const T* v = values.data();
  const T* vn = next_values.data();
  const std::uint8_t* term = terminated.data();
  const std::uint8_t* trunc = truncated.data();
  T* a = adv.mutable_data();
  T* re = ret.mutable_data();
  bool finite = true;
  {
    py::gil_scoped_release nogil;
    refrl::gae<T>(shape[0], shape[1], r, v, vn, term, trunc, static_cast<T>(gamma), static_cast<T>(lam), a, re);
    finite = refrl::all_finite(re, shape[0] * shape[1]);  // ret = A + V: non-finite if anything was
  }
  return py::make_tuple(adv, ret, finite);
}

template <class T>
py::tuple surrogate_binding(const Arr<T>& logp, const Arr<T>& logp_old, const Arr<T>& advantages,
                            const py::object& weights, double clip_eps) {
  if (logp.ndim() != 1) throw py::value_error("'logp' must be 1-D [B]");
  const py::ssize_t shape[1] = {logp.shape(0)};
  require_shape(logp_old, "logp_old", 1, shape);
  require_shape(advantages, "advantages", 1, shape);
  const T* w = nullptr;
  Arr<T> w_arr;
  if (!weights.is_none()) {
    if (!py::isinstance<Arr<T>>(weights)) throw py::type_error("'weights' must be an array of the kernel's dtype");
    w_arr = py::reinterpret_borrow<Arr<T>>(weights);
    if (!(w_arr.flags() & py::array::c_style)) throw py::value_error("'weights' must be C-contiguous");
    require_shape(w_arr, "weights", 1, shape);
    w = w_arr.data();
  }
  Arr<T> grad(shape[0]);
  const T* lp = logp.data();
  const T* lpo = logp_old.data();
  const T* ad = advantages.data();
  T* g = grad.mutable_data();
  refrl::SurrogateStats s{};
  {
    py::gil_scoped_release nogil;
    s = refrl::clipped_surrogate<T>(shape[0], lp, lpo, ad, w, static_cast<T>(clip_eps), g);
  }
  return py::make_tuple(s.objective, grad, s.clip_fraction, s.approx_kl, s.ratio_min, s.ratio_mean,
                        s.ratio_max, s.weight_sum, s.invalid_weights);
}

template <class T>
py::tuple cg_native_binding(const refrl::LinearOperator<T>& op, const Arr<T>& b, refrl::Index iters, double tol,
                            double damping) {
  const py::ssize_t shape[1] = {static_cast<py::ssize_t>(op.size())};
  require_shape(b, "b", 1, shape);
  if (iters < 0) throw py::value_error("'iters' must be >= 0");
  Arr<T> x(shape[0]);
  const T* bp = b.data();
  T* xp = x.mutable_data();
  refrl::CGInfo<T> info{};
  {
    py::gil_scoped_release nogil;  // the whole solve, operator applications included
    info = refrl::conjugate_gradient<T>(op, bp, iters, static_cast<T>(tol), static_cast<T>(damping), xp);
  }
  return py::make_tuple(x, info.iterations, static_cast<double>(info.residual_norm), static_cast<int>(info.status));
}

// fn(v) must return an array convertible to a C-contiguous T array of shape [n]; refrl.kernels
// wraps the user's callable so that it does (and raises a named error otherwise).
template <class T>
py::tuple cg_callable_binding(const py::function& fn, const Arr<T>& b, refrl::Index iters, double tol,
                              double damping) {
  if (b.ndim() != 1) throw py::value_error("'b' must be 1-D");
  if (iters < 0) throw py::value_error("'iters' must be >= 0");
  const refrl::Index n = b.shape(0);
  Arr<T> x(n);
  std::vector<T> work(static_cast<std::size_t>(3 * n));
  const T* bp = b.data();
  T* xp = x.mutable_data();
  std::exception_ptr error;
  auto apply = [&fn, &error, n](const T* v, T* out) -> bool {
    py::gil_scoped_acquire gil;  // reacquired only for the call into Python
    try {
      Arr<T> v_arr(n);
      std::copy(v, v + n, v_arr.mutable_data());  // the callable gets its own copy
      py::object result = fn(v_arr);
      if (!py::isinstance<Arr<T>>(result)) throw py::type_error("operator returned an array of the wrong dtype");
      auto res = py::reinterpret_borrow<Arr<T>>(result);
      if (res.ndim() != 1 || res.shape(0) != n || !(res.flags() & py::array::c_style))
        throw py::value_error("operator returned an array of the wrong shape");
      std::copy(res.data(), res.data() + n, out);
      return true;
    } catch (...) {
      error = std::current_exception();
      return false;
    }
  };
  refrl::CGInfo<T> info{};
  {
    py::gil_scoped_release nogil;
    info = refrl::conjugate_gradient<T>(apply, n, bp, iters, static_cast<T>(tol), static_cast<T>(damping), xp,
                                        work.data());
  }
  if (error) std::rethrow_exception(error);  // with the GIL held again
  return py::make_tuple(x, info.iterations, static_cast<double>(info.residual_norm), static_cast<int>(info.status));
}

template <class T>
void bind_for(py::module_& m, const std::string& suffix) {
  m.def(("gae_" + suffix).c_str(), &gae_binding<T>, py::arg("rewards").noconvert(), py::arg("values").noconvert(),
        py::arg("next_values").noconvert(), py::arg("terminated").noconvert(), py::arg("truncated").noconvert(),
        py::arg("gamma"), py::arg("lam"),
        "GAE over [T, N] -> (advantages, returns, all_finite). Flags are uint8. Use refrl.kernels.gae, which checks arguments.");
  m.def(("clipped_surrogate_" + suffix).c_str(), &surrogate_binding<T>, py::arg("logp").noconvert(),
        py::arg("logp_old").noconvert(), py::arg("advantages").noconvert(), py::arg("weights"),
        py::arg("clip_eps"),
        "PPO clipped surrogate -> (objective, grad_logp, clip_fraction, approx_kl, ratio_min, ratio_mean, "
        "ratio_max, weight_sum, invalid_weights). Use refrl.kernels.clipped_surrogate.");
  m.def(("adam_step_" + suffix).c_str(), &adam_binding<T>, py::arg("params").noconvert(),
        py::arg("grads").noconvert(), py::arg("m").noconvert(), py::arg("v").noconvert(), py::arg("t"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        "One Adam step in place on params, m, v. Use refrl.kernels.adam_step (or refrl.optim.Adam).");
  m.def(("conjugate_gradient_" + suffix).c_str(), &cg_native_binding<T>, py::arg("operator"),
        py::arg("b").noconvert(), py::arg("iters"), py::arg("tol"), py::arg("damping"),
        "CG with a native operator (whole solve without the GIL) -> (x, iterations, residual_norm, status).");
  m.def(("conjugate_gradient_callable_" + suffix).c_str(), &cg_callable_binding<T>, py::arg("operator"),
        py::arg("b").noconvert(), py::arg("iters"), py::arg("tol"), py::arg("damping"),
        "CG with a Python callable v -> A v (GIL reacquired per call) -> (x, iterations, residual_norm, status).");
}

}  // namespace

void bind_kernels(py::module_& m) {
  bind_for<float>(m, "f32");
  bind_for<double>(m, "f64");
  m.attr("CG_STATUS") = py::make_tuple("converged", "max_iterations", "not_positive_definite", "non_finite",
                                       "operator_failed");
}

}  // namespace refrl_bind
