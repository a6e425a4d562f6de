#pragma once
// Vector and matrix helpers of the core: SIMD lane types, bit casts, the one vectorised exp
// (used by the clipped surrogate's ratio and by tanh), tanh, the padded row-major matrix and
// the register-blocked GEMM of the native MLP (mlp.hpp, act.hpp), and an all-finite test.
//
// SIMD code uses GCC/Clang vector extensions (Lanes<T, VB>: VB bytes of T), which compile to
// SSE2/AVX2/AVX-512/NEON as the target of the calling kernel variant allows (isa.hpp). Other
// compilers, or -DREFRL_VECTOR_EXT=0, get plain loops with the same interface.
//
// No Python, no exceptions, no allocation (Mat::resize aside), no macros.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "refrl/common.hpp"
#include "refrl/isa.hpp"

namespace refrl {
namespace detail {

#if (defined(__GNUC__) || defined(__clang__)) && !(defined(REFRL_VECTOR_EXT) && REFRL_VECTOR_EXT == 0)
inline constexpr bool kVectorExtensions = true;
#else
inline constexpr bool kVectorExtensions = false;
#endif

// ------------------------------------------------------------------------------- bit casts
// to <- the bits of from. __builtin_bit_cast (GCC >= 11, Clang >= 9) keeps the value in
// registers, so that loops using it vectorise; memcpy is the portable fallback. For scalars and
// lane vectors (an output argument, not a return value: no vector calling convention involved).
template <class To, class From>
[[gnu::always_inline]] inline void bit_copy(To& to, const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
#if defined(__has_builtin)
#if __has_builtin(__builtin_bit_cast)
  to = __builtin_bit_cast(To, from);
#else
  std::memcpy(&to, &from, sizeof(To));
#endif
#else
  std::memcpy(&to, &from, sizeof(To));
#endif
}

// --------------------------------------------------------------------------------- lanes
// Constants of the exp below, per precision.
template <class T>
struct ExpConst;
// Int: unsigned, so that the exponent-bit arithmetic wraps (defined) where the result is then
// replaced by inf or 0.
template <>
struct ExpConst<double> {
  using Int = std::uint64_t;
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  static constexpr Int mant_bits = 52, bias = 1023;
  static constexpr double overflow = 709.782712893384;   // exp(x) > max double above
  static constexpr double underflow = -745.2;            // exp(x) rounds to 0 below
};
template <>
struct ExpConst<float> {
  using Int = std::uint32_t;
  static constexpr float log2e = 1.44269502f;
  static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
  static constexpr Int mant_bits = 23, bias = 127;
  static constexpr float overflow = 88.7228393f;
  static constexpr float underflow = -104.0f;
};

// Lanes<T, VB>::V: VB bytes of T as one vector (VB = 0: a single scalar T); ::I the integers of
// the same width (the comparison masks and the exponent bits of V).
template <class T, int VB>
struct Lanes;
template <class T>
struct Lanes<T, 0> {
  using V = T;
  using I = typename ExpConst<T>::Int;
};
#if (defined(__GNUC__) || defined(__clang__)) && !(defined(REFRL_VECTOR_EXT) && REFRL_VECTOR_EXT == 0)
template <class T, int VB>
struct Lanes {
  typedef T V __attribute__((vector_size(VB)));
  typedef typename ExpConst<T>::Int I __attribute__((vector_size(VB)));
};
#endif

// --------------------------------------------------------------------------------- exp
// exp(x) in place, on a scalar (VB = 0, inside an `omp simd` loop) or on a lane vector; every
// branch is a select, so it vectorises. Cephes exp / expf (S. Moshier): Cody-Waite reduction
// x = k ln2 + r, |r| <= ln2/2 (ln 2 split in a part exact in k ln2_hi and a remainder), exp(r)
// by a Pade form 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)) (double) or a degree-7 polynomial (float),
// 2^k built in the exponent bits. Accuracy: within a few ulp of the correctly rounded exp
// (tests/test_surrogate.py). NaN propagates.
// FullRange: any x; above the overflow threshold +inf, below the underflow one 0 (one select
// each, GCC if-converts them), and 2^k as 2^k1 2^k2 so that subnormal results stay exact. Without it the caller guarantees
// 0 <= x <= 50 (tanh's 2|x|, clamped): one factor 2^k, no clamps.
template <class T, int VB, bool FullRange>
[[gnu::always_inline]] inline void simd_exp(typename Lanes<T, VB>::V& inout) {
  using V = typename Lanes<T, VB>::V;
  using I = typename Lanes<T, VB>::I;
  using C = ExpConst<T>;
  const V x = inout;
  const V zero = V{} + T(0), one = zero + T(1), two = zero + T(2);
  // No clamp of x: wherever k leaves the range of the exponent bits (|x| beyond the thresholds,
  // inf) the result is replaced by inf or 0 below; NaN stays NaN through every step.
  const V xc = x;
  const V t = xc * C::log2e + C::shifter;  // t - shifter = k = round(x / ln 2)
  const V kd = t - C::shifter;
  V em;  // exp(r)
  if constexpr (sizeof(T) == 8) {
    const V r = (xc - kd * T(6.93145751953125E-1)) - kd * T(1.42860682030941723212E-6);
    const V rr = r * r;
    const V px = r * ((rr * T(1.26177193074810590878E-4) + T(3.02994407707441961300E-2)) * rr + T(9.99999999999999999910E-1));
    const V qx = ((rr * T(3.00198505138664455042E-6) + T(2.52448340349684104192E-3)) * rr + T(2.27265548208155028766E-1)) * rr +
                 T(2.00000000000000000009E0);
    em = one + two * (px / (qx - px));
  } else {
    const V r = (xc - kd * T(0.693359375)) - kd * T(-2.12194440E-4);
    em = (((((r * T(1.9875691500E-4) + T(1.3981999507E-3)) * r + T(8.3334519073E-3)) * r + T(4.1665795894E-2)) * r +
           T(1.6666665459E-1)) * r + T(5.0000001201E-1)) * r * r + r + one;
  }
  const V sh = zero + C::shifter;
  I sh_bits, t_bits;
  bit_copy(sh_bits, sh);
  bit_copy(t_bits, t);
  if constexpr (!FullRange) {
    const I pow2_bits = ((t_bits - sh_bits) + C::bias) << C::mant_bits;  // bits of 2^k
    V pow2;
    bit_copy(pow2, pow2_bits);
    inout = em * pow2;
  } else {
    const V k1d = (kd * T(0.5) + C::shifter) - C::shifter;  // any split k = k1 + k2 with both in range
    const V k2d = kd - k1d;
    const V t1 = k1d + C::shifter, t2 = k2d + C::shifter;
    I k1, k2;
    bit_copy(k1, t1);
    bit_copy(k2, t2);
    const I s1_bits = ((k1 - sh_bits) + C::bias) << C::mant_bits;
    const I s2_bits = ((k2 - sh_bits) + C::bias) << C::mant_bits;
    V s1, s2;
    bit_copy(s1, s1_bits);
    bit_copy(s2, s2_bits);
    V y = em * s1 * s2;
    y = x > C::overflow ? zero + std::numeric_limits<T>::infinity() : y;
    y = x < C::underflow ? zero : y;
    inout = y;
  }
}

// exp(x) of one scalar (FullRange): for loops that the compiler vectorises.
template <class T>
[[gnu::always_inline]] inline T vexp(T x) {
  simd_exp<T, 0, true>(x);
  return x;
}

// --------------------------------------------------------------------------------- tanh
// tanh on lanes, in place (the library tanh is a scalar call and dominated the forward pass).
// Cephes tanh / tanhf: |x| < 0.625: x + x^3 P(x^2) [/ Q(x^2) in double]; otherwise
// sign(x) (1 - 2 / (exp(2|x|) + 1)) with the exp above, 2|x| clamped where tanh rounds to 1.
// Accuracy: a few ulp (tests/test_fisher.py). NaN stays NaN.
template <class T, int VB>
[[gnu::always_inline]] inline void simd_tanh(typename Lanes<T, VB>::V& inout) {
  using V = typename Lanes<T, VB>::V;
  constexpr T big = sizeof(T) == 8 ? T(22) : T(10);  // tanh(big) rounds to 1
  const V x = inout;
  const V zero = V{} + T(0), one = zero + T(1), two = zero + T(2);
  const V a = x < zero ? -x : x;
  const V z = x * x;
  V small;
  V e = two * (a < big ? a : zero + big);  // 2|x|, clamped: exp(2|x|) stays finite
  if constexpr (sizeof(T) == 8) {
    const V p = (z * T(-9.64399179425052238628E-1) + T(-9.92877231001918586564E1)) * z + T(-1.61468768441708447952E3);
    const V q = ((z + T(1.12811678491632931402E2)) * z + T(2.23548839060100448583E3)) * z + T(4.84406305325125486048E3);
    small = x + x * z * (p / q);
  } else {
    small = ((((z * T(-5.70498872745E-3) + T(2.06390887954E-2)) * z - T(5.37397155531E-2)) * z + T(1.33314422036E-1)) * z -
             T(3.33332819422E-1)) * z * x + x;
  }
  simd_exp<T, VB, false>(e);  // exp(2|x|)
  const V large_abs = one - two / (e + one);
  const V large = x < zero ? -large_abs : large_abs;
  const V y = a < T(0.625) ? small : large;
  inout = x == x ? y : x;  // NaN in, NaN out
}

// h[0, n) <- tanh(h) in place; n a multiple of 32 bytes (padded rows) when vectorised.
template <class T, int VB>
[[gnu::always_inline]] inline void tanh_row(T* h, Index n) {
  if constexpr (kVectorExtensions) {
    using V = typename Lanes<T, VB>::V;
    constexpr Index VL = VB / Index(sizeof(T));
    Index j = 0;
    for (; j + VL <= n; j += VL) {
      V x;
      std::memcpy(&x, h + j, sizeof(V));
      simd_tanh<T, VB>(x);
      std::memcpy(h + j, &x, sizeof(V));
    }
    if constexpr (VB > 32)
      if (j < n) tanh_row<T, 32>(h + j, n - j);
  } else {
    for (Index j = 0; j < n; ++j) h[j] = std::tanh(h[j]);
  }
}

// --------------------------------------------------------------------------------- all finite
// True when no element is NaN or inf (exponent bits all ones). An integer OR-reduction, so the
// loop vectorises (a floating-point reduction would not, without -ffast-math).
template <class T>
inline bool all_finite_body(const T* x, Index n) {
  using U = typename ExpConst<T>::Int;
  constexpr U exp_mask = sizeof(T) == 8 ? U(0x7ff0000000000000LL) : U(0x7f800000);
  U bad = 0;
  for (Index i = 0; i < n; ++i) {
    U bits;
    bit_copy(bits, x[i]);
    bad |= static_cast<U>((bits & exp_mask) == exp_mask);
  }
  return bad == 0;
}
struct AllFiniteKernel {
  template <Isa I, class T>
  static bool run(const T* x, Index n) {
    return all_finite_body<T>(x, n);
  }
};

// ------------------------------------------------------------------------------ matrices
// Row length of internal matrices: a multiple of 32 bytes. Column blocks are whole vectors of
// the kernel's width (16, 32 or 64 bytes), with one 32-byte block at the end where needed, so a
// narrow output layer (e.g. 4 logits) wastes at most half a 64-byte vector.
template <class T>
constexpr Index padded(Index n) {
  constexpr Index q = Index(32 / sizeof(T));
  return (n + q - 1) / q * q;
}

// A row-major matrix with padded rows, zero-initialised (the padding stays zero).
template <class T>
struct Mat {
  Index rows = 0, cols = 0, ld = 0;
  std::vector<T> data;
  void resize(Index r, Index c) {
    rows = r;
    cols = c;
    ld = padded<T>(c);
    // a row stride that is a multiple of 4 KiB maps every row to the same L1 set: add a line
    if ((ld * Index(sizeof(T))) % 4096 == 0) ld += Index(64 / sizeof(T));
    data.assign(static_cast<std::size_t>(r * ld), T(0));
  }
  T* row(Index i) { return data.data() + i * ld; }
  const T* row(Index i) const { return data.data() + i * ld; }
};

// C[MR, NV*VL] (+)= A[MR, K] B[K, NV*VL]: MR x NV accumulators held in registers.
template <class T, int VB, int MR, int NV>
[[gnu::always_inline]] inline void gemm_micro(bool accumulate, Index K, const T* A, Index lda, const T* B,
                                              Index ldb, T* C, Index ldc) {
  if constexpr (kVectorExtensions) {
    using V = typename Lanes<T, VB>::V;
    constexpr int VL = VB / int(sizeof(T));
    V acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NV; ++j) acc[r][j] = V{};
    for (Index k = 0; k < K; ++k) {
      const T* b = B + k * ldb;
      V bv[NV];
      for (int j = 0; j < NV; ++j) std::memcpy(&bv[j], b + j * VL, sizeof(V));
      for (int r = 0; r < MR; ++r) {
        const T a = A[r * lda + k];
        for (int j = 0; j < NV; ++j) acc[r][j] += a * bv[j];
      }
    }
    for (int r = 0; r < MR; ++r) {
      for (int j = 0; j < NV; ++j) {
        T* c = C + r * ldc + j * VL;
        if (accumulate) {
          V cv;
          std::memcpy(&cv, c, sizeof(V));
          cv += acc[r][j];
          std::memcpy(c, &cv, sizeof(V));
        } else {
          std::memcpy(c, &acc[r][j], sizeof(V));
        }
      }
    }
  } else {  // the same sums, one output at a time
    constexpr int VL = VB / int(sizeof(T));
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NV * VL; ++j) {
        T s = T(0);
        for (Index k = 0; k < K; ++k) s += A[r * lda + k] * B[k * ldb + j];
        T* c = C + r * ldc + j;
        *c = accumulate ? *c + s : s;
      }
  }
}

// C[MR, N] (+)= A[MR, K] B[K, N] for N a multiple of 32 bytes: column blocks of two vectors,
// then one, then (for 64-byte vectors) a 32-byte tail.
template <class T, int VB, int MR>
[[gnu::always_inline]] inline void gemm_row_block(bool accumulate, Index N, Index K, const T* A, Index lda,
                                                  const T* B, Index ldb, T* C, Index ldc) {
  constexpr Index VL = VB / Index(sizeof(T));
  Index j = 0;
  for (; j + 2 * VL <= N; j += 2 * VL) gemm_micro<T, VB, MR, 2>(accumulate, K, A, lda, B + j, ldb, C + j, ldc);
  for (; j + VL <= N; j += VL) gemm_micro<T, VB, MR, 1>(accumulate, K, A, lda, B + j, ldb, C + j, ldc);
  if constexpr (VB > 32)  // the 32-byte tail of a padded row
    for (; j + 32 / Index(sizeof(T)) <= N; j += 32 / Index(sizeof(T)))
      gemm_micro<T, 32, MR, 1>(accumulate, K, A, lda, B + j, ldb, C + j, ldc);
}

// C[M, N] = A[M, K] B[K, N] (accumulate == false) or C += A B (accumulate == true).
// Row-major with leading dimensions; N must be a multiple of 32 bytes (padded rows).
// K is processed in chunks so that the slices of A and B being reused stay in L1/L2.
template <class T, int VB>
[[gnu::always_inline]] inline void gemm(bool accumulate, Index M, Index N, Index K, const T* A, Index lda,
                                        const T* B, Index ldb, T* C, Index ldc) {
  if (K == 0) {
    if (!accumulate)
      for (Index i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  if constexpr (kVectorExtensions) {
    constexpr Index KC = 256;
    for (Index k0 = 0; k0 < K; k0 += KC) {
      const Index kc = std::min(KC, K - k0);
      const bool acc = accumulate || k0 > 0;
      const T* Ak = A + k0;
      const T* Bk = B + k0 * ldb;
      Index i = 0;
      for (; i + 6 <= M; i += 6) gemm_row_block<T, VB, 6>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc);
      switch (M - i) {
        case 5: gemm_row_block<T, VB, 5>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc); break;
        case 4: gemm_row_block<T, VB, 4>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc); break;
        case 3: gemm_row_block<T, VB, 3>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc); break;
        case 2: gemm_row_block<T, VB, 2>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc); break;
        case 1: gemm_row_block<T, VB, 1>(acc, N, kc, Ak + i * lda, lda, Bk, ldb, C + i * ldc, ldc); break;
        default: break;
      }
    }
  } else {
    for (Index i = 0; i < M; ++i) {
      T* c = C + i * ldc;
      if (!accumulate) std::fill(c, c + N, T(0));
      for (Index k = 0; k < K; ++k) {
        const T a = A[i * lda + k];
        const T* b = B + k * ldb;
        for (Index j = 0; j < N; ++j) c[j] += a * b[j];
      }
    }
  }
}

}  // namespace detail

// True if every entry of x[0, n) is finite.
template <class T>
bool all_finite(const T* x, Index n) {
  static_assert(is_real_v<T>, "refrl::all_finite is defined for float and double");
  return dispatch<Isa::avx2, detail::AllFiniteKernel>(kernel_isa(), x, n);
}

}  // namespace refrl
