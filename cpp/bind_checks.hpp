#pragma once
// Argument checks shared by the bindings of the native MLP family (bind_fisher.cpp,
// bind_act.cpp): each raises ValueError "<who>: '<argument>' ..." before any
// C++ touches the data.
#include <cstdlib>
#include <string>
#include <vector>

#include "bindings.hpp"
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

// "auto": the best variant this CPU supports, or the portable one when REFRL_KERNEL_ISA=baseline
// (the switch bind_kernels.cpp honours for the other kernels).
inline refrl::Isa auto_isa() {
  const char* force = std::getenv("REFRL_KERNEL_ISA");
  if (force != nullptr && std::string(force) == "baseline") return refrl::Isa::generic;
  return refrl::best_isa();
}

inline refrl::Isa checked_isa(const std::string& who, const std::string& name) {
  if (name == "auto") return auto_isa();
  refrl::Isa isa;
  if (name == "generic") isa = refrl::Isa::generic;
  else if (name == "avx2") isa = refrl::Isa::avx2;
  else if (name == "avx512") isa = refrl::Isa::avx512;
  else fail(who, "'isa' must be 'auto', 'generic', 'avx2' or 'avx512', got '" + name + "'");
  if (!refrl::isa_supported(isa)) fail(who, "'isa'='" + name + "' is not supported by this CPU or build");
  return isa;
}

}  // namespace refrl_bind
