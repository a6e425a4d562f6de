// Bindings of act.hpp: the fused per-env-step acting path of refrl.policy.ActorCritic (policy and
// value MLP forward for a small batch, then Categorical / Gaussian / Bernoulli sampling from numpy's random
// numbers) as _core.ActNetF32/F64. Every size is checked here before C++ touches a buffer; the
// GIL is released around the computation. A non-finite input or output returns None (the Python
// caller then runs the NumPy path, which names the culprit in its error).
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bind_checks.hpp"
#include "refrl/act.hpp"

namespace refrl_bind {
namespace {

using refrl::Index;

template <class T>
struct ActNet {
  refrl::ActNets nets;
  std::string who;

  Index n_params() const { return nets.vf_offset + nets.vf.num_params; }

  void check_theta(const CArr<T>& theta) const {
    if (theta.ndim() != 1 || theta.shape(0) != n_params())
      fail(who, "'theta' must be a 1-D array of length " + std::to_string(n_params()) + ", got shape " +
                    shape_str(theta));
  }
  Index check_x(const CArr<T>& x) const {
    const Index d0 = nets.pi.in_dim();
    if (x.ndim() != 2 || x.shape(1) != d0 || x.shape(0) < 1)
      fail(who, "'x' must have shape (B, " + std::to_string(d0) + ") with B >= 1, got shape " + shape_str(x));
    return x.shape(0);
  }
  template <class A>
  static std::string shape_str(const A& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
  }

  // forward into fresh arrays; false when x or an output is not finite
  bool run(const CArr<T>& theta, const CArr<T>& x, Index B, CArr<T>& pi_out, CArr<T>& v_out) const {
    const T* th = theta.data();
    const T* xp = x.data();
    T* po = pi_out.mutable_data();
    T* vo = v_out.mutable_data();
    const Index d0 = nets.pi.in_dim(), dpi = nets.pi.out_dim();
    py::gil_scoped_release release;
    if (!refrl::all_finite(xp, B * d0)) return false;
    refrl::act_forward<T>(nets, th, B, xp, po, vo);
    return refrl::all_finite(po, B * dpi) && refrl::all_finite(vo, B);
  }
};

template <class T>
void bind_for(py::module_& m, const char* suffix) {
  using Net = ActNet<T>;
  const std::string name = std::string("ActNet") + suffix;
  py::class_<Net>(m, name.c_str(), R"pbdoc(
Fused acting path of an actor-critic: policy MLP + value MLP forward for a small batch, reading
the live flat parameter vector theta = [policy MLP | (log_std) | ... value MLP at vf_offset]
(refrl.nn layout), then optionally the action sample (use refrl.policy.ActorCritic.act).

ActNetFxx(pi_sizes, vf_sizes, vf_offset, activation, isa="auto")
  .forward(theta, x) -> (pi_out [B, pi_sizes[-1]], values [B]) or None if not finite
  .act_categorical(theta, x, u) -> (actions int64 [B], logp [B], values [B]) or None;
      u: float64 [B] (or [B, 1]) uniforms from numpy's rng.random
  .act_bernoulli(theta, x, u) -> (actions int8 [B, n], logp [B], values [B]) or None;
      u: float64 [B, n] uniforms from numpy's rng.random, n = pi_sizes[-1]
  .act_gaussian(theta, x, eps, log_std_min, log_std_max, low=None, high=None)
      -> (actions [B, d], logp [B], values [B]) or None; eps: float64 [B, d] from
      rng.standard_normal; log_std = theta[n_pi : n_pi + d]. With low and high ([d] arrays of
      the dtype) a fourth output: the actions clipped to [low, high] for the environment.
)pbdoc")
      .def(py::init([name](std::vector<Index> pi_sizes, std::vector<Index> vf_sizes, Index vf_offset,
                           std::string activation, std::string isa_name) {
             const refrl::MlpLayout pi = checked_layout(name, "pi_sizes", pi_sizes);
             const refrl::MlpLayout vf = checked_layout(name, "vf_sizes", vf_sizes);
             if (vf.in_dim() != pi.in_dim()) fail(name, "'vf_sizes'[0] must equal 'pi_sizes'[0]");
             if (vf.out_dim() != 1) fail(name, "'vf_sizes'[-1] must be 1 (a value network)");
             if (vf_offset < pi.num_params || vf_offset > pi.num_params + refrl::kMaxWidth)
               fail(name, "'vf_offset' must be in [" + std::to_string(pi.num_params) + ", " +
                              std::to_string(pi.num_params + refrl::kMaxWidth) + "], got " + std::to_string(vf_offset));
             const refrl::Activation act = checked_activation(name, activation);
             const refrl::Isa isa = checked_isa(name, isa_name);
             return Net{refrl::act_nets(pi, vf, vf_offset, act, isa), name};
           }),
           py::arg("pi_sizes"), py::arg("vf_sizes"), py::arg("vf_offset"), py::arg("activation") = "tanh",
           py::arg("isa") = "auto")
      .def(
          "forward",
          [](const Net& net, CArr<T> theta, CArr<T> x) -> py::object {
            net.check_theta(theta);
            const Index B = net.check_x(x);
            CArr<T> po({B, net.nets.pi.out_dim()});
            CArr<T> vo(B);
            if (!net.run(theta, x, B, po, vo)) return py::none();
            return py::make_tuple(po, vo);
          },
          py::arg("theta").noconvert(), py::arg("x").noconvert())
      .def(
          "act_categorical",
          [](const Net& net, CArr<T> theta, CArr<T> x, CArr<double> u) -> py::object {
            net.check_theta(theta);
            const Index B = net.check_x(x);
            if (u.size() != B || !(u.ndim() == 1 || (u.ndim() == 2 && u.shape(1) == 1)))
              fail(net.who, "'u' must have shape (" + std::to_string(B) + ",) or (" + std::to_string(B) + ", 1), got " +
                                Net::shape_str(u));
            const Index n = net.nets.pi.out_dim();
            CArr<T> po({B, n});
            CArr<T> vo(B);
            if (!net.run(theta, x, B, po, vo)) return py::none();
            py::array_t<std::int64_t> a(B);
            CArr<T> logp(B);
            {
              const T* pp = po.data();
              const double* up = u.data();
              std::int64_t* ap = a.mutable_data();
              T* lp = logp.mutable_data();
              py::gil_scoped_release release;
              std::vector<T> work(static_cast<std::size_t>(n));
              refrl::Categorical::sample<T>(pp, B, n, up, work.data(), ap, lp);
            }
            return py::make_tuple(a, logp, vo);
          },
          py::arg("theta").noconvert(), py::arg("x").noconvert(), py::arg("u").noconvert())
      .def(
          "act_bernoulli",
          [](const Net& net, CArr<T> theta, CArr<T> x, CArr<double> u) -> py::object {
            net.check_theta(theta);
            const Index B = net.check_x(x);
            const Index n = net.nets.pi.out_dim();
            if (u.ndim() != 2 || u.shape(0) != B || u.shape(1) != n)
              fail(net.who, "'u' must have shape (" + std::to_string(B) + ", " + std::to_string(n) + "), got " +
                                Net::shape_str(u));
            CArr<T> po({B, n});
            CArr<T> vo(B);
            if (!net.run(theta, x, B, po, vo)) return py::none();
            py::array_t<std::int8_t> a({B, n});
            CArr<T> logp(B);
            {
              const T* pp = po.data();
              const double* up = u.data();
              std::int8_t* ap = a.mutable_data();
              T* lp = logp.mutable_data();
              py::gil_scoped_release release;
              refrl::Bernoulli::sample<T>(pp, B, n, up, ap, lp);
            }
            return py::make_tuple(a, logp, vo);
          },
          py::arg("theta").noconvert(), py::arg("x").noconvert(), py::arg("u").noconvert())
      .def(
          "act_gaussian",
          [](const Net& net, CArr<T> theta, CArr<T> x, CArr<double> eps, double lo, double hi, const py::object& low,
             const py::object& high) -> py::object {
            const Index d = net.nets.pi.out_dim();
            if (net.nets.vf_offset < net.nets.pi.num_params + d)
              fail(net.who, "act_gaussian needs log_std (" + std::to_string(d) + " entries) between the networks "
                            "('vf_offset' too small)");
            net.check_theta(theta);
            const Index B = net.check_x(x);
            if (eps.ndim() != 2 || eps.shape(0) != B || eps.shape(1) != d)
              fail(net.who, "'eps' must have shape (" + std::to_string(B) + ", " + std::to_string(d) + "), got " +
                                Net::shape_str(eps));
            if (!(lo <= hi)) fail(net.who, "'log_std_min' must be <= 'log_std_max'");
            if (low.is_none() != high.is_none()) fail(net.who, "'low' and 'high' go together (both or neither)");
            const bool clip = !low.is_none();
            const auto bound = [&](const py::object& o, const char* arg) {
              if (!py::isinstance<CArr<T>>(o)) fail(net.who, std::string("'") + arg + "' must be an array of the net's dtype");
              auto arr = py::reinterpret_borrow<CArr<T>>(o);
              if (arr.ndim() != 1 || arr.shape(0) != d || !(arr.flags() & py::array::c_style))
                fail(net.who, std::string("'") + arg + "' must be a C-contiguous array of shape (" + std::to_string(d) +
                                  ",), got " + Net::shape_str(arr));
              return arr;
            };
            CArr<T> low_arr, high_arr;
            if (clip) {
              low_arr = bound(low, "low");
              high_arr = bound(high, "high");
            }
            CArr<T> po({B, d});
            CArr<T> vo(B);
            if (!net.run(theta, x, B, po, vo)) return py::none();
            std::vector<T> ls(static_cast<std::size_t>(d));
            if (!refrl::DiagGaussian::bounded_log_std<T>(theta.data() + net.nets.pi.num_params, d, T(lo), T(hi),
                                                         ls.data()))
              return py::none();
            CArr<T> a({B, d});
            CArr<T> logp(B);
            {
              const T* pp = po.data();
              const double* ep = eps.data();
              T* ap = a.mutable_data();
              T* lp = logp.mutable_data();
              py::gil_scoped_release release;
              refrl::DiagGaussian::sample<T>(pp, ls.data(), B, d, ep, ap, lp);
            }
            if (!refrl::all_finite(a.data(), B * d) || !refrl::all_finite(logp.data(), B)) return py::none();
            if (!clip) return py::make_tuple(a, logp, vo);
            CArr<T> a_env({B, d});  // the environment's copy of the actions, clipped to the box
            refrl::DiagGaussian::clip_to_box<T>(a.data(), B, d, low_arr.data(), high_arr.data(), a_env.mutable_data());
            return py::make_tuple(a, logp, vo, a_env);
          },
          py::arg("theta").noconvert(), py::arg("x").noconvert(), py::arg("eps").noconvert(),
          py::arg("log_std_min"), py::arg("log_std_max"), py::arg("low") = py::none(), py::arg("high") = py::none())
      .def_property_readonly("n_params", &Net::n_params)
      .def_property_readonly("isa", [](const Net& net) { return std::string(refrl::isa_name(net.nets.isa)); })
      .def_property_readonly("pi_sizes", [](const Net& net) { return net.nets.pi.sizes; })
      .def_property_readonly("vf_sizes", [](const Net& net) { return net.nets.vf.sizes; })
      .def_property_readonly("vf_offset", [](const Net& net) { return net.nets.vf_offset; });
}

}  // namespace

void bind_act(py::module_& m) {
  bind_for<float>(m, "F32");
  bind_for<double>(m, "F64");
}

}  // namespace refrl_bind
