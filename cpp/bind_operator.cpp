#include "bindings.hpp"
#include "refrl/cg.hpp"

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

// A dense (symmetric) matrix as a native operator: lets conjugate_gradient run entirely in C++
// on an explicit matrix, and gives the tests a native operator independent of the Fisher code.
template <class T>
static void bind_dense_for(py::module_& m, const char* name) {
  using Dense = refrl::DenseOperator<T>;
  py::class_<Dense, refrl::LinearOperator<T>>(m, name, "Native operator v -> M v for a dense square matrix M (copied).")
      .def(py::init([](py::array_t<T, py::array::c_style> matrix) {
             if (matrix.ndim() != 2 || matrix.shape(0) != matrix.shape(1))
               throw py::value_error("'matrix' must be a square 2-D array");
             return new Dense(matrix.shape(0), matrix.data());
           }),
           py::arg("matrix").noconvert());
}

void bind_linear_operator(py::module_& m) {
  bind_operator_for<float>(m, "LinearOperatorF32");
  bind_operator_for<double>(m, "LinearOperatorF64");
  bind_dense_for<float>(m, "DenseOperatorF32");
  bind_dense_for<double>(m, "DenseOperatorF64");
}

}  // namespace refrl_bind
