#pragma once
// Generalized Advantage Estimation over a time-major [T, N] rollout.
// Schulman, Moritz, Levine, Jordan, Abbeel (2016), "High-Dimensional Continuous Control
// Using Generalized Advantage Estimation", eq. (11)-(16), in the general form of docs/design.md:
//   delta_t   = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
//   A_t       = delta_t + gamma * lambda * (1 - (terminated_t or truncated_t)) * A_{t+1}
//   returns_t = A_t + V(s_t)
// V(s'_t) is the value of the observation that followed step t (the real final observation
// when the episode ended there): truncation bootstraps from it, termination does not, and
// both kinds of episode end cut the lambda-trace. A_T (beyond the rollout) is 0.
// Runs in the generic or AVX2 variant (isa.hpp; AVX2 fuses multiply-adds, so the two agree to
// rounding). No Python, no third-party headers, no allocation, no exceptions, no macros.
#include <cstdint>
#include <cstring>

#include "refrl/common.hpp"
#include "refrl/isa.hpp"

namespace refrl {

namespace detail {
// One block of W envs (columns n0 .. n0+W-1). The running A_{t+1} of each env lives in
// `last`, a fixed-size array the compiler keeps in registers: the only serial dependency is
// last <- delta + gamma*lam*last (one multiply-add per step), and the W envs are independent
// lanes of one vector operation.
template <class T, int W>
inline void gae_block(Index n_steps, Index n_envs, Index n0, const T* rewards, const T* values,
                      const T* next_values, const std::uint8_t* terminated, const std::uint8_t* truncated,
                      T gamma, T gamma_lam, T* out_adv, T* out_ret) {
  T last[W] = {};
  for (Index t = n_steps - 1; t >= 0; --t) {
    const Index row = t * n_envs + n0;
#pragma omp simd
    for (int l = 0; l < W; ++l) {
      const Index i = row + l;
      // unconditional loads, then selects: the loop if-converts and vectorises
      const T v_next = next_values[i];
      const bool term = terminated[i] != 0;
      const bool done = term | (truncated[i] != 0);
      // select, not multiply: a terminal step never uses V(s'_t) (0 * inf would be NaN)
      const T boot = term ? T(0) : v_next;
      const T delta = rewards[i] + gamma * boot - values[i];
      // either kind of episode end cuts the trace (select again: nothing crosses an episode end)
      const T trace = done ? T(0) : last[l];
      last[l] = delta + gamma_lam * trace;
      out_adv[i] = last[l];
      out_ret[i] = last[l] + values[i];
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
// The block of 8 envs with GCC's generic vector types: the recursion over t is then one
// vector multiply-add per step whatever the auto-vectoriser decides (GCC lowers the vectors
// to whatever the target has: SSE2, AVX2, ...). Same arithmetic, same order of operations
// as gae_block, lane by lane.
// 32-byte vectors: 8 floats or 4 doubles (one AVX register; two SSE registers).
template <class T>
struct Vec32;
template <>
struct Vec32<float> {
  typedef float vec __attribute__((vector_size(32)));
  typedef std::int32_t mask __attribute__((vector_size(32)));
  typedef std::uint8_t bytes __attribute__((vector_size(8)));
};
template <>
struct Vec32<double> {
  typedef double vec __attribute__((vector_size(32)));
  typedef std::int64_t mask __attribute__((vector_size(32)));
  typedef std::uint8_t bytes __attribute__((vector_size(4)));
};

// A block of 8 envs as K = 8 / lanes vectors, all K recursions advanced in the same step.
template <class T>
inline void gae_block8(Index n_steps, Index n_envs, Index n0, const T* rewards, const T* values,
                       const T* next_values, const std::uint8_t* terminated, const std::uint8_t* truncated,
                       T gamma, T gamma_lam, T* out_adv, T* out_ret) {
  using V = typename Vec32<T>::vec;
  using M = typename Vec32<T>::mask;
  using Bytes = typename Vec32<T>::bytes;
  constexpr int lanes = static_cast<int>(sizeof(V) / sizeof(T));
  constexpr int K = 8 / lanes;
  const V zero = {};
  const V g = zero + gamma;
  const V gl = zero + gamma_lam;
  V last[K];
  for (int k = 0; k < K; ++k) last[k] = zero;
  for (Index t = n_steps - 1; t >= 0; --t) {
    for (int k = 0; k < K; ++k) {
      const Index i = t * n_envs + n0 + k * lanes;
      V r, v, v_next;
      Bytes term8, trunc8;
      std::memcpy(&r, rewards + i, sizeof(V));  // unaligned loads
      std::memcpy(&v, values + i, sizeof(V));
      std::memcpy(&v_next, next_values + i, sizeof(V));
      std::memcpy(&term8, terminated + i, sizeof(Bytes));
      std::memcpy(&trunc8, truncated + i, sizeof(Bytes));
      const M term = __builtin_convertvector(term8, M) != 0;
      const M done = __builtin_convertvector(term8 | trunc8, M) != 0;
      const V boot = term ? zero : v_next;  // select: a terminal step never uses V(s'_t)
      const V delta = r + g * boot - v;
      const V trace = done ? zero : last[k];
      last[k] = delta + gl * trace;
      const V ret = last[k] + v;
      std::memcpy(out_adv + i, &last[k], sizeof(V));
      std::memcpy(out_ret + i, &ret, sizeof(V));
    }
  }
}
#endif

template <class T>
void gae_body(Index n_steps, Index n_envs, const T* rewards, const T* values, const T* next_values,
              const std::uint8_t* terminated, const std::uint8_t* truncated, T gamma, T lam, T* out_adv,
              T* out_ret) {
  const T gamma_lam = gamma * lam;
  Index n0 = 0;
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
  for (; n0 + 8 <= n_envs; n0 += 8)
    gae_block8<T>(n_steps, n_envs, n0, rewards, values, next_values, terminated, truncated, gamma, gamma_lam,
                  out_adv, out_ret);
#else
  for (; n0 + 8 <= n_envs; n0 += 8)
    gae_block<T, 8>(n_steps, n_envs, n0, rewards, values, next_values, terminated, truncated, gamma, gamma_lam,
                    out_adv, out_ret);
#endif
  for (; n0 + 4 <= n_envs; n0 += 4)
    gae_block<T, 4>(n_steps, n_envs, n0, rewards, values, next_values, terminated, truncated, gamma, gamma_lam,
                    out_adv, out_ret);
  for (; n0 < n_envs; ++n0)
    gae_block<T, 1>(n_steps, n_envs, n0, rewards, values, next_values, terminated, truncated, gamma, gamma_lam,
                    out_adv, out_ret);
}

struct GaeKernel {
  template <Isa I, class... A>
  static void run(A... args) {
    gae_body(args...);
  }
};

}  // namespace detail

// All arrays are row-major [T, N] (row stride N). Flags are bytes: 0 = false, anything else
// = true. out_adv and out_ret must not alias the inputs. T == 0 or N == 0 writes nothing.
// The envs are processed in blocks of 8 (then 4, then 1) so each block's recursion over t
// is one vector operation per step with its carry in registers.
template <class T>
void gae(Index n_steps, Index n_envs, const T* rewards, const T* values, const T* next_values,
         const std::uint8_t* terminated, const std::uint8_t* truncated, T gamma, T lam,
         T* out_adv, T* out_ret) {
  static_assert(is_real_v<T>, "refrl::gae is defined for float and double");
  dispatch<Isa::avx2, detail::GaeKernel>(kernel_isa(), n_steps, n_envs, rewards, values, next_values, terminated,
                                         truncated, gamma, lam, out_adv, out_ret);
}

}  // namespace refrl
