#pragma once
// Shared vocabulary of the header-only core. No Python, no third-party headers.
#include <cstddef>
#include <type_traits>

namespace refrl {

using Index = std::ptrdiff_t;

template <class T>
inline constexpr bool is_real_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

// A symmetric linear operator y = A x on R^n, implemented natively so that an
// iterative solver (conjugate_gradient) can run without leaving C++.
// The Fisher-vector product of the MLP policy derives from this.
template <class T>
class LinearOperator {
  static_assert(is_real_v<T>, "refrl kernels are defined for float and double");

 public:
  virtual ~LinearOperator() = default;
  virtual Index size() const = 0;
  // out[0..size) = A * v[0..size); v and out do not alias.
  virtual void apply(const T* v, T* out) const = 0;
};

}  // namespace refrl
