#pragma once
// Instruction sets of the compiled kernels, and the one place that picks among them.
//
// Every kernel of the core (GAE, clipped surrogate, Adam, the native MLP, the acting network, the
// Fisher-vector product) is compiled in several variants from one source: for the baseline of
// the build target (`generic`: SSE2 on x86-64, NEON on AArch64, plain loops elsewhere), for
// AVX2 + FMA and for AVX-512F, with GCC/Clang `target` attributes (the build never uses
// -march=native). dispatch<Widest, Kernel>(isa, args...) runs Kernel::run<I>(args...) compiled
// for I = the widest variant up to both `isa` and `Widest`; `flatten` inlines the whole kernel
// into that variant, so every loop in it is compiled for its instruction set.
//
// The level in use is kernel_isa(): the best this CPU supports, lowered by the environment
// variable REFRL_KERNEL_ISA (read once per process): "generic" (or "baseline") or "avx2".
// Kernels whose arithmetic depends on the vector width (a reduction split over the lanes) keep
// the width they were validated with: GAE, the surrogate and Adam have generic and AVX2 variants
// (Widest = avx2), the MLP kernels all three.
//
// Other compilers and architectures get the generic variant only. No macros are defined here.
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace refrl {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

// "generic" | "avx2" | "avx512" -> *out; false (and *out untouched) for any other name.
inline bool isa_from_name(const char* name, Isa* out) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (std::strcmp(name, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  return false;
}

// Bytes per SIMD vector of a variant's kernels.
constexpr int vector_bytes(Isa isa) { return isa == Isa::avx512 ? 64 : isa == Isa::avx2 ? 32 : 16; }

// Whether this build has the variant and this CPU runs it.
inline bool isa_supported(Isa isa) {
  if (isa == Isa::generic) return true;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && \
    !(defined(REFRL_VECTOR_EXT) && REFRL_VECTOR_EXT == 0)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::avx2) return avx2;
  if (isa == Isa::avx512) return avx2 && __builtin_cpu_supports("avx512f");
#endif
  return false;
}

inline Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::generic;
}

// The variant the kernels run by default: best_isa(), lowered by REFRL_KERNEL_ISA (unknown
// values are ignored). Decided once per process.
inline Isa kernel_isa() {
  static const Isa chosen = [] {
    const Isa best = best_isa();
    const char* env = std::getenv("REFRL_KERNEL_ISA");
    Isa cap = best;
    if (env == nullptr) return best;
    if (std::strcmp(env, "baseline") == 0) cap = Isa::generic;
    else if (!isa_from_name(env, &cap)) return best;
    return cap < best ? cap : best;
  }();
  return chosen;
}

namespace detail {

// Arguments by value (pointers and scalars; objects by pointer): a reference to a scalar could
// alias the kernel's output stores and keep the loops from being vectorised as well.
template <class K, class... A>
[[gnu::flatten]] inline decltype(auto) run_generic(A... a) {
  return K::template run<Isa::generic>(a...);
}
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && \
    !(defined(REFRL_VECTOR_EXT) && REFRL_VECTOR_EXT == 0)
inline constexpr bool kX86Variants = true;
template <class K, class... A>
[[gnu::target("avx2,fma"), gnu::flatten]] inline decltype(auto) run_avx2(A... a) {
  return K::template run<Isa::avx2>(a...);
}
template <class K, class... A>
[[gnu::target("avx512f,avx2,fma"), gnu::flatten]] inline decltype(auto) run_avx512(A... a) {
  return K::template run<Isa::avx512>(a...);
}
#else
inline constexpr bool kX86Variants = false;
template <class K, class... A>
inline decltype(auto) run_avx2(A... a) {
  return run_generic<K>(a...);
}
template <class K, class... A>
inline decltype(auto) run_avx512(A... a) {
  return run_generic<K>(a...);
}
#endif

}  // namespace detail

// Kernel::run<I>(args...) in the widest variant I <= min(isa, Widest); args are passed by value
// (pass objects by pointer). Precondition: isa_supported(isa) (kernel_isa() always is).
template <Isa Widest, class Kernel, class... A>
decltype(auto) dispatch(Isa isa, A... args) {
  if constexpr (detail::kX86Variants && Widest >= Isa::avx512)
    if (isa >= Isa::avx512) return detail::run_avx512<Kernel>(args...);
  if constexpr (detail::kX86Variants && Widest >= Isa::avx2)
    if (isa >= Isa::avx2) return detail::run_avx2<Kernel>(args...);
  return detail::run_generic<Kernel>(args...);
}

}  // namespace refrl
