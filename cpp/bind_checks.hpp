#pragma once
// Argument checks shared by the bindings of the native MLP family (bind_fisher.cpp,
// bind_act.cpp): each raises ValueError "<who>: '<argument>' ..." before any
// C++ touches the data.
#include <string>
#include <vector>

#include "bindings.hpp"
#include "refrl/isa.hpp"
#include "refrl/mlp.hpp"

namespace refrl_bind {

template <class T>
using CArr = py::array_t<T, py::array::c_style>;

[[noreturn]] inline void fail(const std::string& who, const std::string& msg) { throw py::value_error(who + ": " + msg); }

// MLP sizes (d0, ..., dL) -> the flat layout nn.py uses; `name` is the Python argument's name.
inline refrl::MlpLayout checked_layout(const std::string& who, const char* name, const std::vector<refrl::Index>& sizes) {
  if (const char* err = refrl::mlp_layout_error(sizes.data(), refrl::Index(sizes.size())))
    fail(who, std::string("'") + name + "': " + err);
  return refrl::mlp_layout(sizes.data(), refrl::Index(sizes.size()));
}

inline refrl::Activation checked_activation(const std::string& who, const std::string& a) {
  if (a == "tanh") return refrl::Activation::tanh;
  if (a == "relu") return refrl::Activation::relu;
  fail(who, "'activation' must be 'tanh' or 'relu', got '" + a + "'");
}

// "auto": the variant of the other kernels (refrl::kernel_isa()); else a variant by name.
inline refrl::Isa checked_isa(const std::string& who, const std::string& name) {
  if (name == "auto") return refrl::kernel_isa();
  refrl::Isa isa;
  if (!refrl::isa_from_name(name.c_str(), &isa))
    fail(who, "'isa' must be 'auto', 'generic', 'avx2' or 'avx512', got '" + name + "'");
  if (!refrl::isa_supported(isa)) fail(who, "'isa'='" + name + "' is not supported by this CPU or build");
  return isa;
}

}  // namespace refrl_bind
