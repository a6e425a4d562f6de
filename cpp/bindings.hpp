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
// bind_fisher.cpp: MLP policy Fisher-vector product (and the TRPO step built on it)
void bind_fisher(py::module_& m);
// bind_trpo.cpp: the whole TRPO/NPG policy update (trpo_step.hpp)
void bind_trpo(py::module_& m);
// bind_act.cpp: fused policy + value forward and sampling for acting (ActorCritic.act)
void bind_act(py::module_& m);
}  // namespace refrl_bind
