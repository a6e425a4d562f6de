#pragma once
// Generalized Advantage Estimation over a time-major [T, N] rollout.
// Schulman, Moritz, Levine, Jordan, Abbeel (2016), "High-Dimensional Continuous Control
// Using Generalized Advantage Estimation", eq. (11)-(16), in the general form of DESIGN.md:
//   delta_t   = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
//   A_t       = delta_t + gamma * lambda * (1 - (terminated_t or truncated_t)) * A_{t+1}
//   returns_t = A_t + V(s_t)
// V(s'_t) is the value of the observation that followed step t (the real final observation
// when the episode ended there): truncation bootstraps from it, termination does not, and
// both kinds of episode end cut the lambda-trace. A_T (beyond the rollout) is 0.
// No Python, no third-party headers, no allocation, no exceptions.
#include <cstdint>

#include "refrl/common.hpp"

namespace refrl {

// All arrays are row-major [T, N] (row stride N). Flags are bytes: 0 = false, anything else
// = true. out_adv and out_ret must not alias the inputs. T == 0 or N == 0 writes nothing.
// The loop runs backwards over t; the inner loop over the N envs is independent per env and
// vectorises (the previous row of out_adv holds A_{t+1}).
template <class T>
void gae(Index n_steps, Index n_envs, const T* rewards, const T* values, const T* next_values,
         const std::uint8_t* terminated, const std::uint8_t* truncated, T gamma, T lam,
         T* out_adv, T* out_ret) {
  static_assert(is_real_v<T>, "refrl::gae is defined for float and double");
  const T gamma_lam = gamma * lam;
  for (Index t = n_steps - 1; t >= 0; --t) {
    const Index row = t * n_envs;
    const T* r = rewards + row;
    const T* v = values + row;
    const T* v_next = next_values + row;
    const std::uint8_t* term = terminated + row;
    const std::uint8_t* trunc = truncated + row;
    T* adv = out_adv + row;
    T* ret = out_ret + row;
    if (t == n_steps - 1) {
      for (Index n = 0; n < n_envs; ++n) {
        // select, not multiply: a terminal step never reads V(s'_t) (0 * inf would be NaN)
        const T boot = term[n] ? T(0) : v_next[n];
        const T delta = r[n] + gamma * boot - v[n];
        adv[n] = delta;
        ret[n] = delta + v[n];
      }
    } else {
      const T* adv_next = adv + n_envs;  // A_{t+1}, written in the previous iteration
      for (Index n = 0; n < n_envs; ++n) {
        const T boot = term[n] ? T(0) : v_next[n];
        const T trace = (term[n] | trunc[n]) ? T(0) : adv_next[n];
        const T a = (r[n] + gamma * boot - v[n]) + gamma_lam * trace;
        adv[n] = a;
        ret[n] = a + v[n];
      }
    }
  }
}

}  // namespace refrl
