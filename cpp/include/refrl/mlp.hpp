#pragma once
// Native MLP on the flat parameter layout of refrl.nn.MLP: forward (with cached activations),
// the forward-mode R-operator J v (Pearlmutter 1994) and the reverse-mode product J^T u, for a
// fixed batch of inputs. This is the engine of the Fisher-vector product (fisher.hpp), where
// the activations at theta_old are computed once and reused by every conjugate-gradient step.
//
// Layout (binding; identical to refrl.nn): sizes (d_0, ..., d_L); for each layer l = 1..L,
// W_l row-major [d_{l-1}, d_l] (z_l = h_{l-1} W_l + b_l), then b_l [d_l]. Hidden layers apply
// phi (tanh or relu); the output layer is linear.
//
//   forward:  h_0 = x,  z_l = h_{l-1} W_l + b_l,  h_l = phi(z_l) (l < L),  y = z_L
//   J v:      R{h_0} = 0,  R{z_l} = R{h_{l-1}} W_l + h_{l-1} V_l + c_l,  R{h_l} = phi'(z_l) R{z_l}
//   J^T u:    delta_L = u,  dW_l = h_{l-1}^T delta_l,  db_l = sum_b delta_l,
//             delta_{l-1} = (delta_l W_l^T) * phi'(z_{l-1})
//   phi = tanh: phi' = 1 - h^2;  phi = relu: phi' = 1[h > 0]
//
// Speed. All products are row-major GEMMs C[M,N] (+)= A[M,K] B[K,N] whose inner loop runs over
// the contiguous output dimension N, register-blocked 6 rows x 2 SIMD vectors (vecmath.hpp).
// W^T and h^T are cached so that the backward products are GEMMs of the same form. Internal
// matrices have their row length padded to a multiple of 32 bytes (padding kept at zero), so
// every column block is a whole number of vectors. The kernels run in the variant of isa.hpp
// chosen per MlpBatch (generic, AVX2 + FMA or AVX-512F).
//
// No Python, no exceptions thrown by this code (std::bad_alloc aside), no globals.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "refrl/common.hpp"
#include "refrl/isa.hpp"
#include "refrl/vecmath.hpp"

namespace refrl {

enum class Activation : int { tanh = 0, relu = 1 };

// ------------------------------------------------------------------------------------ layout
struct MlpLayout {
  std::vector<Index> sizes;     // d_0 .. d_L
  std::vector<Index> w_offset;  // start of W_l in theta, l = 1..L stored at [l-1]
  std::vector<Index> b_offset;  // start of b_l
  Index num_params = 0;
  Index n_layers() const { return static_cast<Index>(sizes.size()) - 1; }
  Index in_dim() const { return sizes.front(); }
  Index out_dim() const { return sizes.back(); }
};

// Largest accepted layer width and parameter count: keeps every index computation far from
// overflow. Returns nullptr when `sizes` describe a valid MLP, else a message.
inline constexpr Index kMaxWidth = Index(1) << 20;
inline constexpr Index kMaxParams = Index(1) << 34;

inline const char* mlp_layout_error(const Index* sizes, Index n_sizes) {
  if (n_sizes < 2) return "sizes must hold at least two entries (input and output widths)";
  Index total = 0;
  for (Index i = 0; i < n_sizes; ++i) {
    if (sizes[i] < 1) return "every entry of sizes must be >= 1";
    if (sizes[i] > kMaxWidth) return "an entry of sizes exceeds the supported width 2^20";
    if (i > 0) {
      total += sizes[i - 1] * sizes[i] + sizes[i];
      if (total > kMaxParams) return "the MLP has more than 2^34 parameters";
    }
  }
  return nullptr;
}

// Precondition: mlp_layout_error(sizes, n_sizes) == nullptr.
inline MlpLayout mlp_layout(const Index* sizes, Index n_sizes) {
  MlpLayout lay;
  lay.sizes.assign(sizes, sizes + n_sizes);
  Index o = 0;
  for (Index l = 1; l < n_sizes; ++l) {
    lay.w_offset.push_back(o);
    o += sizes[l - 1] * sizes[l];
    lay.b_offset.push_back(o);
    o += sizes[l];
  }
  lay.num_params = o;
  return lay;
}

// --------------------------------------------------------------------------- MlpBatch
// The network at a fixed theta on a fixed batch of inputs, with every activation cached.
// Build with mlp_batch_init (runs the forward pass); then mlp_jvp / mlp_vjp any number of times.
// Not safe for concurrent jvp/vjp calls on one object (they share the workspace).
template <class T>
struct MlpBatch {
  static_assert(is_real_v<T>, "refrl::MlpBatch is defined for float and double");
  MlpLayout layout;
  Activation activation = Activation::tanh;
  Isa isa = Isa::generic;
  Index batch = 0;
  // cached at theta (index l = 0..L unless said otherwise)
  std::vector<detail::Mat<T>> W;   // [l-1]: W_l  [d_{l-1}, d_l]
  std::vector<detail::Mat<T>> WT;  // [l-1]: W_l^T [d_l, d_{l-1}]
  std::vector<detail::Mat<T>> H;   // [l]: h_l [B, d_l], l = 0..L-1 (h_0 = x)
  std::vector<detail::Mat<T>> HT;  // [l]: h_l^T [d_l, B]
  detail::Mat<T> Y;                // y = z_L [B, d_L]
  // workspace. Products run over the batch in tiles of `tile` rows so that the per-layer
  // intermediates stay in cache (J v, then M, then J^T u for one tile before the next).
  Index tile = 0;
  std::vector<detail::Mat<T>> V;   // [l-1]: direction V_l [d_{l-1}, d_l]
  // [l], l = 1..L ([0] unused), tile rows: R{z_l} then R{h_l} during J v; reused for delta_l
  // during J^T u (R{.} of the tile is dead by then).
  std::vector<detail::Mat<T>> R;
  std::vector<detail::Mat<T>> GW;  // [l-1]: dW_l [d_{l-1}, d_l], accumulated over tiles
  std::vector<std::vector<T>> GB;  // [l-1]: db_l [d_l], accumulated over tiles
};

// Rows per tile of the products: 192 = 32 blocks of 6 rows; 192 x 64 doubles = 96 KiB.
inline constexpr Index kMlpTileRows = 192;

namespace detail {

template <class T, int VB>
[[gnu::always_inline]] inline void mlp_forward_kernel(MlpBatch<T>& m, const T* theta) {
  const MlpLayout& lay = m.layout;
  const Index L = lay.n_layers(), B = m.batch;
  for (Index l = 1; l <= L; ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    const T* bias = theta + lay.b_offset[l - 1];
    Mat<T>& Z = (l == L) ? m.Y : m.H[l];
    gemm<T, VB>(false, B, Z.ld, din, m.H[l - 1].row(0), m.H[l - 1].ld, m.W[l - 1].row(0), m.W[l - 1].ld,
                Z.row(0), Z.ld);
    for (Index b = 0; b < B; ++b) {
      T* z = Z.row(b);
      for (Index j = 0; j < dout; ++j) z[j] += bias[j];
    }
    if (l == L) break;
    for (Index b = 0; b < B; ++b) {
      T* h = Z.row(b);
      if (m.activation == Activation::tanh) {
        tanh_row<T, VB>(h, Z.ld);  // the padding is 0 and tanh(0) = 0: it stays 0
      } else {
        for (Index j = 0; j < dout; ++j) h[j] = h[j] > T(0) ? h[j] : T(0);
      }
    }
  }
}

// X[b, j] = (X[b, j] + c[j]) * phi'(z_l)[b0 + b, j] for b < nb, j < d (c may be null: no shift),
// with phi' recovered from the cached h_l = phi(z_l): 1 - h^2 (tanh) or 1[h > 0] (relu).
template <class T>
[[gnu::always_inline]] inline void mul_dact(Activation act, Index b0, Index nb, Index d, const Mat<T>& H, Mat<T>& X,
                                  const T* c) {
  for (Index b = 0; b < nb; ++b) {
    const T* h = H.row(b0 + b);
    T* x = X.row(b);
    if (c != nullptr)
      for (Index j = 0; j < d; ++j) x[j] += c[j];
    if (act == Activation::tanh) {
      for (Index j = 0; j < d; ++j) x[j] *= T(1) - h[j] * h[j];
    } else {
      for (Index j = 0; j < d; ++j) x[j] = h[j] > T(0) ? x[j] : T(0);
    }
  }
}

// V_l <- the weight blocks of the direction v (once per product).
template <class T>
inline void mlp_load_direction(MlpBatch<T>& m, const T* v) {
  const MlpLayout& lay = m.layout;
  for (Index l = 1; l <= lay.n_layers(); ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    const T* vw = v + lay.w_offset[l - 1];
    for (Index i = 0; i < din; ++i) std::memcpy(m.V[l - 1].row(i), vw + i * dout, sizeof(T) * std::size_t(dout));
  }
}

// R{z_L} along v for batch rows [b0, b0 + nb) into rows [0, nb) of m.R[L]. V_l must hold v's
// weight blocks (mlp_load_direction); the bias blocks c_l are read from v.
template <class T, int VB>
[[gnu::always_inline]] inline void mlp_jvp_kernel(MlpBatch<T>& m, const T* v, Index b0, Index nb) {
  const MlpLayout& lay = m.layout;
  const Index L = lay.n_layers();
  for (Index l = 1; l <= L; ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    const Mat<T>& Vl = m.V[l - 1];
    const Mat<T>& Hp = m.H[l - 1];
    Mat<T>& Rl = m.R[l];
    // R{z_l} = h_{l-1} V_l (+ R{h_{l-1}} W_l for l > 1) + c_l
    gemm<T, VB>(false, nb, Rl.ld, din, Hp.row(b0), Hp.ld, Vl.row(0), Vl.ld, Rl.row(0), Rl.ld);
    if (l > 1)
      gemm<T, VB>(true, nb, Rl.ld, din, m.R[l - 1].row(0), m.R[l - 1].ld, m.W[l - 1].row(0), m.W[l - 1].ld,
                  Rl.row(0), Rl.ld);
    const T* c = v + lay.b_offset[l - 1];
    if (l < L) {
      mul_dact<T>(m.activation, b0, nb, dout, m.H[l], Rl, c);
    } else {
      for (Index b = 0; b < nb; ++b) {
        T* r = Rl.row(b);
        for (Index j = 0; j < dout; ++j) r[j] += c[j];
      }
    }
  }
}

// Accumulate J^T delta_L over batch rows [b0, b0 + nb) into GW / GB (overwritten when first);
// delta_L is read from rows [0, nb) of m.R[L] (columns >= d_L must be zero).
template <class T, int VB>
[[gnu::always_inline]] inline void mlp_vjp_kernel(MlpBatch<T>& m, Index b0, Index nb, bool first) {
  const MlpLayout& lay = m.layout;
  const Index L = lay.n_layers();
  for (Index l = L; l >= 1; --l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    Mat<T>& Gl = m.R[l];  // delta_l
    Mat<T>& GWl = m.GW[l - 1];
    const Mat<T>& HTp = m.HT[l - 1];
    // dW_l += h_{l-1}^T delta_l  ([d_{l-1}, nb] x [nb, d_l]; columns b0.. of h^T)
    gemm<T, VB>(!first, din, GWl.ld, nb, HTp.row(0) + b0, HTp.ld, Gl.row(0), Gl.ld, GWl.row(0), GWl.ld);
    // db_l += sum over the rows of delta_l
    T* gb = m.GB[l - 1].data();
    if (first) std::fill(gb, gb + dout, T(0));
    for (Index b = 0; b < nb; ++b) {
      const T* g = Gl.row(b);
      for (Index j = 0; j < dout; ++j) gb[j] += g[j];
    }
    if (l == 1) break;
    // delta_{l-1} = (delta_l W_l^T) * phi'(z_{l-1})
    Mat<T>& Gp = m.R[l - 1];
    gemm<T, VB>(false, nb, Gp.ld, dout, Gl.row(0), Gl.ld, m.WT[l - 1].row(0), m.WT[l - 1].ld, Gp.row(0), Gp.ld);
    mul_dact<T>(m.activation, b0, nb, din, m.H[l - 1], Gp, static_cast<const T*>(nullptr));
  }
}

// out[0, num_params) <- the accumulated (dW_l, db_l) in the flat layout.
template <class T>
inline void mlp_store_gradient(const MlpBatch<T>& m, T* out) {
  const MlpLayout& lay = m.layout;
  for (Index l = 1; l <= lay.n_layers(); ++l) {
    const Index din = lay.sizes[l - 1], dout = lay.sizes[l];
    T* ow = out + lay.w_offset[l - 1];
    for (Index i = 0; i < din; ++i) std::memcpy(ow + i * dout, m.GW[l - 1].row(i), sizeof(T) * std::size_t(dout));
    std::memcpy(out + lay.b_offset[l - 1], m.GB[l - 1].data(), sizeof(T) * std::size_t(dout));
  }
}

// The three tile kernels, run in the variant m.isa (isa.hpp).
struct MlpForwardKernel {
  template <Isa I, class T>
  static void run(MlpBatch<T>* m, const T* theta) {
    mlp_forward_kernel<T, vector_bytes(I)>(*m, theta);
  }
};
struct MlpJvpKernel {
  template <Isa I, class T>
  static void run(MlpBatch<T>* m, const T* v, Index b0, Index nb) {
    mlp_jvp_kernel<T, vector_bytes(I)>(*m, v, b0, nb);
  }
};
struct MlpVjpKernel {
  template <Isa I, class T>
  static void run(MlpBatch<T>* m, Index b0, Index nb, bool first) {
    mlp_vjp_kernel<T, vector_bytes(I)>(*m, b0, nb, first);
  }
};

template <class T>
void mlp_forward(MlpBatch<T>& m, const T* theta) {
  dispatch<Isa::avx512, MlpForwardKernel>(m.isa, &m, theta);
}
template <class T>
void mlp_jvp(MlpBatch<T>& m, const T* v, Index b0, Index nb) {
  dispatch<Isa::avx512, MlpJvpKernel>(m.isa, &m, v, b0, nb);
}
template <class T>
void mlp_vjp(MlpBatch<T>& m, Index b0, Index nb, bool first) {
  dispatch<Isa::avx512, MlpVjpKernel>(m.isa, &m, b0, nb, first);
}

}  // namespace detail

// Cache the network at theta on the batch x: rows x + b * x_stride, b = 0..batch-1, each with
// d_0 entries. Preconditions (checked by the caller, e.g. the Python binding): theta holds
// layout.num_params values, x holds the rows described, batch >= 1, isa_supported(isa).
template <class T>
void mlp_batch_init(MlpBatch<T>& m, const MlpLayout& layout, Activation activation, Isa isa, const T* theta,
                    Index batch, const T* x, Index x_stride) {
  using detail::Mat;
  m.layout = layout;
  m.activation = activation;
  m.isa = isa;
  m.batch = batch;
  m.tile = std::min(batch, kMlpTileRows);
  const Index L = layout.n_layers();
  const auto& s = layout.sizes;
  m.W.assign(std::size_t(L), Mat<T>());
  m.WT.assign(std::size_t(L), Mat<T>());
  m.V.assign(std::size_t(L), Mat<T>());
  m.GW.assign(std::size_t(L), Mat<T>());
  m.GB.assign(std::size_t(L), std::vector<T>());
  m.H.assign(std::size_t(L), Mat<T>());
  m.HT.assign(std::size_t(L), Mat<T>());
  m.R.assign(std::size_t(L + 1), Mat<T>());
  for (Index l = 1; l <= L; ++l) {
    const Index din = s[l - 1], dout = s[l];
    Mat<T>& W = m.W[l - 1];
    Mat<T>& WT = m.WT[l - 1];
    W.resize(din, dout);
    WT.resize(dout, din);
    const T* w = theta + layout.w_offset[l - 1];
    for (Index i = 0; i < din; ++i)
      for (Index j = 0; j < dout; ++j) {
        W.row(i)[j] = w[i * dout + j];
        WT.row(j)[i] = w[i * dout + j];
      }
    m.V[l - 1].resize(din, dout);
    m.GW[l - 1].resize(din, dout);
    m.GB[l - 1].assign(std::size_t(dout), T(0));
    m.R[l].resize(m.tile, dout);
    if (l < L) m.H[l].resize(batch, dout);
  }
  m.Y.resize(batch, s[L]);
  m.H[0].resize(batch, s[0]);
  for (Index b = 0; b < batch; ++b) std::memcpy(m.H[0].row(b), x + b * x_stride, sizeof(T) * std::size_t(s[0]));
  detail::mlp_forward<T>(m, theta);
  for (Index l = 0; l < L; ++l) {  // h_l^T, transposed in 16 x 16 tiles
    Mat<T>& HT = m.HT[l];
    const Mat<T>& H = m.H[l];
    HT.resize(s[l], batch);
    constexpr Index TB = 16;
    for (Index b0 = 0; b0 < batch; b0 += TB)
      for (Index j0 = 0; j0 < s[l]; j0 += TB) {
        const Index b1 = std::min(batch, b0 + TB), j1 = std::min(s[l], j0 + TB);
        for (Index j = j0; j < j1; ++j)
          for (Index b = b0; b < b1; ++b) HT.row(j)[b] = H.row(b)[j];
      }
  }
}

// y[b, j] of the cached forward pass.
template <class T>
inline T mlp_output(const MlpBatch<T>& m, Index b, Index j) {
  return m.Y.row(b)[j];
}

// out_jv [batch, d_L] (dense, row-major) = J v, the derivative of the outputs along v.
template <class T>
void mlp_jvp(MlpBatch<T>& m, const T* v, T* out_jv) {
  const Index L = m.layout.n_layers(), dL = m.layout.out_dim();
  detail::mlp_load_direction<T>(m, v);
  for (Index b0 = 0; b0 < m.batch; b0 += m.tile) {
    const Index nb = std::min(m.tile, m.batch - b0);
    detail::mlp_jvp<T>(m, v, b0, nb);
    for (Index b = 0; b < nb; ++b)
      std::memcpy(out_jv + (b0 + b) * dL, m.R[L].row(b), sizeof(T) * std::size_t(dL));
  }
}

// out [num_params] = J^T u = sum_b (dy_b/dtheta)^T u_b for u [batch, d_L] (dense, row-major).
template <class T>
void mlp_vjp(MlpBatch<T>& m, const T* u, T* out) {
  const Index L = m.layout.n_layers(), dL = m.layout.out_dim();
  for (Index b0 = 0; b0 < m.batch; b0 += m.tile) {
    const Index nb = std::min(m.tile, m.batch - b0);
    for (Index b = 0; b < nb; ++b) std::memcpy(m.R[L].row(b), u + (b0 + b) * dL, sizeof(T) * std::size_t(dL));
    detail::mlp_vjp<T>(m, b0, nb, b0 == 0);
  }
  detail::mlp_store_gradient<T>(m, out);
}

}  // namespace refrl
