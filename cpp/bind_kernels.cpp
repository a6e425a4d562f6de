#include "bindings.hpp"

namespace refrl_bind {
void bind_kernels(py::module_&) {}  // filled by the core-kernels work (issue 2)
}  // namespace refrl_bind
