#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/functional.h>

#include "refrl/common.hpp"

namespace py = pybind11;

namespace refrl_bind {
// bind_operator.cpp: refrl::LinearOperator<T> as _core.LinearOperatorF32/F64 (base of native operators)
void bind_linear_operator(py::module_& m);
// bind_kernels.cpp: gae, clipped_surrogate, conjugate_gradient
void bind_kernels(py::module_& m);
// bind_fisher.cpp: MLP policy Fisher-vector product (the operator TRPO/NPG solve with CG)
void bind_fisher(py::module_& m);
// bind_act.cpp: fused policy + value forward and sampling for acting (ActorCritic.act)
void bind_act(py::module_& m);
}  // namespace refrl_bind
