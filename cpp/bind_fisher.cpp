// Bindings of mlp.hpp / fisher.hpp: the native Fisher-vector-product operator of an MLP policy
// (a subclass of _core.LinearOperatorF32/F64, so conjugate_gradient runs it without Python) and
// the cached MLP batch it is built on. Every size is validated here before any C++ touches the
// buffers; the GIL is released around the forward pass and every product.
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bind_checks.hpp"
#include "refrl/fisher.hpp"
#include "refrl/mlp.hpp"

namespace refrl_bind {
namespace {

using refrl::Index;

template <class T>
void check_obs(const std::string& who, const CArr<T>& obs, Index d0) {
  if (obs.ndim() != 2 || obs.shape(1) != d0 || obs.shape(0) < 1)
    fail(who, "'obs' must have shape (B, " + std::to_string(d0) + ") with B >= 1");
}

template <class T>
void check_vec(const std::string& who, const char* name, const CArr<T>& a, Index n) {
  if (a.ndim() != 1 || a.shape(0) != n) fail(who, std::string("'") + name + "' must be a 1-D array of length " + std::to_string(n));
}

const char* head_name(refrl::PolicyHead h) {
  switch (h) {
    case refrl::PolicyHead::gaussian: return "gaussian";
    case refrl::PolicyHead::multicategorical: return "multicategorical";
    case refrl::PolicyHead::bernoulli: return "bernoulli";
    default: return "categorical";
  }
}

template <class T>
void bind_for(py::module_& m, const char* suffix) {
  using Op = refrl::FisherOperator<T>;
  using Base = refrl::LinearOperator<T>;
  using Batch = refrl::MlpBatch<T>;
  const std::string fname = std::string("FisherOperator") + suffix;
  const std::string mname = std::string("MlpBatch") + suffix;

  py::class_<Op, Base>(m, fname.c_str(), R"pbdoc(
Fisher-vector product of an MLP policy at theta_old as a native linear operator:
F v = (1/B) sum_b J_b^T M_b J_b v + damping v (use refrl.kernels.fisher_operator, which checks
arguments). Forward activations at theta_old are cached at construction.

FisherOperatorFxx(theta, sizes, activation, head, obs, damping=0.0, subsample=1, nvec=None, isa="auto")
  theta: 1-D [MLP params | log_std (gaussian only)]; sizes: MLP widths (d0, ..., dL);
  activation: "tanh" | "relu"; head: "categorical" | "gaussian" | "multicategorical" | "bernoulli";
  obs: [B, d0]; subsample=k uses rows 0, k, 2k, ...; nvec: component sizes (multicategorical);
  isa: "auto" | "generic" | "avx2" | "avx512" (kernel variant; "auto" = best supported).
)pbdoc")
      .def(py::init([fname](CArr<T> theta, std::vector<Index> sizes, std::string activation, std::string head,
                            CArr<T> obs, double damping, Index subsample, std::optional<std::vector<Index>> nvec,
                            std::string isa_name) {
             const refrl::MlpLayout layout = checked_layout(fname, "sizes", sizes);
             const refrl::Activation act = checked_activation(fname, activation);
             refrl::PolicyHead h;
             if (head == "categorical") h = refrl::PolicyHead::categorical;
             else if (head == "gaussian") h = refrl::PolicyHead::gaussian;
             else if (head == "multicategorical") h = refrl::PolicyHead::multicategorical;
             else if (head == "bernoulli") h = refrl::PolicyHead::bernoulli;
             else fail(fname, "'head' must be 'categorical', 'gaussian', 'multicategorical' or 'bernoulli', got '" + head + "'");
             const std::vector<Index> nv = nvec ? *nvec : std::vector<Index>();
             if (const char* err = refrl::fisher_head_error(layout, h, nv.data(), Index(nv.size())))
               fail(fname, std::string("'nvec': ") + err);
             check_vec<T>(fname, "theta", theta, refrl::fisher_num_params(layout, h));
             check_obs<T>(fname, obs, layout.in_dim());
             if (subsample < 1) fail(fname, "'subsample' must be >= 1, got " + std::to_string(subsample));
             if (!std::isfinite(damping)) fail(fname, "'damping' must be finite");
             const refrl::Isa isa = checked_isa(fname, isa_name);
             const T* th = theta.data();
             const T* ob = obs.data();
             const Index n_obs = obs.shape(0);
             std::unique_ptr<Op> op;
             {
               py::gil_scoped_release release;
               op = std::make_unique<Op>(layout, act, h, nv.data(), Index(nv.size()), th, n_obs, ob, layout.in_dim(),
                                         subsample, T(damping), isa);
             }
             return op;
           }),
           py::arg("theta").noconvert(), py::arg("sizes"), py::arg("activation"), py::arg("head"),
           py::arg("obs").noconvert(), py::arg("damping") = 0.0, py::arg("subsample") = 1,
           py::arg("nvec") = py::none(), py::arg("isa") = "auto")
      .def_property(
          "damping", [](const Op& op) { return double(op.damping()); },
          [fname](Op& op, double d) {
            if (!std::isfinite(d)) fail(fname, "'damping' must be finite");
            op.set_damping(T(d));
          },
          "Damping lambda added to F (F v + lambda v).")
      .def_property_readonly("batch_size", &Op::batch_size, "Number of observations used (after subsampling).")
      .def_property_readonly("n_obs", &Op::n_obs, "Number of observations given.")
      .def_property_readonly("subsample", &Op::subsample)
      .def_property_readonly("forward_finite", &Op::forward_finite,
                             "False if the policy output at theta_old overflowed (products would be NaN).")
      .def_property_readonly("isa", [](const Op& op) { return std::string(refrl::isa_name(op.isa())); })
      .def_property_readonly("head", [](const Op& op) { return std::string(head_name(op.head())); })
      .def_property_readonly("activation",
                             [](const Op& op) { return std::string(op.activation() == refrl::Activation::tanh ? "tanh" : "relu"); })
      .def_property_readonly("sizes", [](const Op& op) { return op.layout().sizes; })
      .def_property_readonly("nvec", [](const Op& op) { return op.nvec(); });

  py::class_<Batch>(m, mname.c_str(), R"pbdoc(
A native MLP (refrl.nn layout) at fixed theta on a fixed batch x, activations cached:
MlpBatchFxx(theta, sizes, activation, x, isa="auto"); .output() -> y [B, dL];
.jvp(v) -> J v [B, dL]; .vjp(u) -> J^T u [num_params] (summed over the batch).
)pbdoc")
      .def(py::init([mname](CArr<T> theta, std::vector<Index> sizes, std::string activation, CArr<T> x,
                            std::string isa_name) {
             const refrl::MlpLayout layout = checked_layout(mname, "sizes", sizes);
             const refrl::Activation act = checked_activation(mname, activation);
             check_vec<T>(mname, "theta", theta, layout.num_params);
             if (x.ndim() != 2 || x.shape(1) != layout.in_dim() || x.shape(0) < 1)
               fail(mname, "'x' must have shape (B, " + std::to_string(layout.in_dim()) + ") with B >= 1");
             const refrl::Isa isa = checked_isa(mname, isa_name);
             auto mb = std::make_unique<Batch>();
             const T* th = theta.data();
             const T* xp = x.data();
             const Index B = x.shape(0);
             {
               py::gil_scoped_release release;
               refrl::mlp_batch_init<T>(*mb, layout, act, isa, th, B, xp, layout.in_dim());
             }
             return mb;
           }),
           py::arg("theta").noconvert(), py::arg("sizes"), py::arg("activation"), py::arg("x").noconvert(),
           py::arg("isa") = "auto")
      .def("output",
           [](const Batch& mb) {
             const Index B = mb.batch, dL = mb.layout.out_dim();
             CArr<T> y({B, dL});
             T* yp = y.mutable_data();
             for (Index b = 0; b < B; ++b)
               for (Index j = 0; j < dL; ++j) yp[b * dL + j] = refrl::mlp_output(mb, b, j);
             return y;
           })
      .def(
          "jvp",
          [mname](Batch& mb, CArr<T> v) {
            check_vec<T>(mname, "v", v, mb.layout.num_params);
            CArr<T> out({mb.batch, mb.layout.out_dim()});
            const T* vp = v.data();
            T* op = out.mutable_data();
            refrl::mlp_jvp<T>(mb, vp, op);  // keeps the GIL: MlpBatch's workspace is not shared-safe
            return out;
          },
          py::arg("v").noconvert())
      .def(
          "vjp",
          [mname](Batch& mb, CArr<T> u) {
            if (u.ndim() != 2 || u.shape(0) != mb.batch || u.shape(1) != mb.layout.out_dim())
              fail(mname, "'u' must have shape (" + std::to_string(mb.batch) + ", " +
                              std::to_string(mb.layout.out_dim()) + ")");
            CArr<T> out(mb.layout.num_params);
            const T* up = u.data();
            T* op = out.mutable_data();
            refrl::mlp_vjp<T>(mb, up, op);  // keeps the GIL (see jvp)
            return out;
          },
          py::arg("u").noconvert())
      .def_property_readonly("batch_size", [](const Batch& mb) { return mb.batch; })
      .def_property_readonly("isa", [](const Batch& mb) { return std::string(refrl::isa_name(mb.isa)); });
}

}  // namespace

void bind_fisher(py::module_& m) {
  bind_for<float>(m, "F32");
  bind_for<double>(m, "F64");
  m.def("isa_supported",
        [](const std::string& name) {
          refrl::Isa isa;
          if (!refrl::isa_from_name(name.c_str(), &isa))
            throw py::value_error("isa_supported: 'name' must be 'generic', 'avx2' or 'avx512'");
          return refrl::isa_supported(isa);
        },
        py::arg("name"), "Whether this build and CPU run the kernel variant 'generic', 'avx2' or 'avx512'.");
}

}  // namespace refrl_bind
