#include "bindings.hpp"

namespace refrl_bind {
void bind_fisher(py::module_&) {}  // filled by the learning-core work (issue 3)
}  // namespace refrl_bind
