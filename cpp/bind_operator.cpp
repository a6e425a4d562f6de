#include "bindings.hpp"

namespace refrl_bind {

template <class T>
static void bind_operator_for(py::module_& m, const char* name) {
  using Op = refrl::LinearOperator<T>;
  py::class_<Op>(m, name, "Native symmetric linear operator v -> A v (abstract base).")
      .def_property_readonly("size", &Op::size)
      .def(
          "__call__",
          [](const Op& op, py::array_t<T, py::array::c_style | py::array::forcecast> v) {
            if (v.ndim() != 1 || v.shape(0) != op.size())
              throw py::value_error("v must be a 1-D array of length " + std::to_string(op.size()));
            py::array_t<T> out(op.size());
            const T* vp = v.data();
            T* op_out = out.mutable_data();
            {
              py::gil_scoped_release release;
              op.apply(vp, op_out);
            }
            return out;
          },
          py::arg("v"), "Apply the operator: returns A v.");
}

void bind_linear_operator(py::module_& m) {
  bind_operator_for<float>(m, "LinearOperatorF32");
  bind_operator_for<double>(m, "LinearOperatorF64");
}

}  // namespace refrl_bind
