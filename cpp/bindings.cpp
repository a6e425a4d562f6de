// refrl._core: thin pybind11 bindings over the header-only core in cpp/include/refrl/.
// Each bind_*.cpp registers one family of kernels; this file only assembles the module.
// Argument checking lives in src/refrl/kernels.py; the bindings re-check what they must
// so that nothing reaches C++ out of bounds, then release the GIL and call the header.
#include "bindings.hpp"
#include "refrl/isa.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "refrl's compiled core (use refrl.kernels, which checks arguments)";
  refrl_bind::bind_linear_operator(m);
  refrl_bind::bind_kernels(m);
  refrl_bind::bind_fisher(m);
  refrl_bind::bind_act(m);
  // The instruction-set variant the kernels run (isa.hpp): "avx512", "avx2" or "generic".
  m.attr("KERNEL_ISA") = refrl::isa_name(refrl::kernel_isa());
}
