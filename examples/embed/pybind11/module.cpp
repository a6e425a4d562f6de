// A small Python module of one's own over refrl's C++ core: GAE for float64 arrays.
// (refrl.kernels.gae is the checked, complete version; this shows the embedding.)
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>

#include "refrl/gae.hpp"

namespace py = pybind11;
using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Flags = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;

namespace {
void check_shape(const py::array& a, const char* name, py::ssize_t T, py::ssize_t N) {
  if (a.ndim() != 2 || a.shape(0) != T || a.shape(1) != N)
    throw py::value_error(std::string(name) + " must have the shape [T, N] of rewards");
}

std::pair<py::array_t<double>, py::array_t<double>> gae(const F64& rewards, const F64& values,
                                                        const F64& next_values, const Flags& terminated,
                                                        const Flags& truncated, double gamma, double lam) {
  if (rewards.ndim() != 2) throw py::value_error("rewards must be a 2-D [T, N] array");
  const py::ssize_t T = rewards.shape(0), N = rewards.shape(1);
  check_shape(values, "values", T, N);
  check_shape(next_values, "next_values", T, N);
  check_shape(terminated, "terminated", T, N);
  check_shape(truncated, "truncated", T, N);
  py::array_t<double> adv({T, N}), ret({T, N});
  const double *r = rewards.data(), *v = values.data(), *nv = next_values.data();
  const std::uint8_t *term = terminated.data(), *trunc = truncated.data();
  double *out_adv = adv.mutable_data(), *out_ret = ret.mutable_data();
  {
    py::gil_scoped_release release;  // plain C++ from here on: no Python object is touched
    refrl::gae<double>(T, N, r, v, nv, term, trunc, gamma, lam, out_adv, out_ret);
  }
  return {adv, ret};
}
}  // namespace

PYBIND11_MODULE(refrl_embed_gae, m) {
  m.doc() = "GAE from refrl's header-only C++ core (example of embedding)";
  m.def("gae", &gae, py::arg("rewards"), py::arg("values"), py::arg("next_values"), py::arg("terminated"),
        py::arg("truncated"), py::arg("gamma"), py::arg("lam"),
        "Generalized Advantage Estimation over float64 [T, N] arrays -> (advantages, returns)");
}
