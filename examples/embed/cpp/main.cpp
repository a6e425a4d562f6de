// refrl's C++ core without Python: GAE over a small [T, N] rollout and conjugate gradient on a
// small symmetric positive-definite system. Prints each input and result as one line
//   name rows cols v_0 v_1 ...      (row-major, %.17g: read back exactly)
#include <cstdint>
#include <cstdio>
#include <vector>

#include "refrl/cg.hpp"
#include "refrl/gae.hpp"

namespace {
void print(const char* name, refrl::Index rows, refrl::Index cols, const double* v) {
  std::printf("%s %td %td", name, rows, cols);
  for (refrl::Index i = 0; i < rows * cols; ++i) std::printf(" %.17g", v[i]);
  std::printf("\n");
}

void print_flags(const char* name, refrl::Index rows, refrl::Index cols, const std::uint8_t* v) {
  std::vector<double> as_double(v, v + rows * cols);
  print(name, rows, cols, as_double.data());
}
}  // namespace

int main() {
  // GAE: T = 5 steps of N = 2 envs, time-major. Env 0 terminates at t = 2; env 1 is truncated
  // at t = 3 (it bootstraps from the value of its real final observation).
  const refrl::Index T = 5, N = 2;
  const double rewards[T * N] = {1.0, 0.5, 0.0, 0.5, 2.0, -1.0, 0.5, 1.0, 1.0, 0.0};
  const double values[T * N] = {0.3, 0.1, 0.8, -0.2, 1.1, 0.4, 0.0, 0.6, 0.7, 0.2};
  const double next_values[T * N] = {0.8, -0.2, 1.1, 0.4, 9.0, 0.6, 0.7, 1.5, 0.4, 0.3};
  const std::uint8_t terminated[T * N] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
  const std::uint8_t truncated[T * N] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
  const double gamma = 0.99, lam = 0.95;
  double advantages[T * N], returns[T * N];
  refrl::gae<double>(T, N, rewards, values, next_values, terminated, truncated, gamma, lam, advantages,
                     returns);
  print("gae.rewards", T, N, rewards);
  print("gae.values", T, N, values);
  print("gae.next_values", T, N, next_values);
  print_flags("gae.terminated", T, N, terminated);
  print_flags("gae.truncated", T, N, truncated);
  print("gae.gamma", 1, 1, &gamma);
  print("gae.lam", 1, 1, &lam);
  print("gae.advantages", T, N, advantages);
  print("gae.returns", T, N, returns);

  // CG: (A + damping I) x = b with A symmetric positive definite (4 x 4).
  const refrl::Index n = 4;
  const double A[n * n] = {4.0, 1.0, 0.5, 0.0,  //
                           1.0, 3.0, 0.2, 0.1,  //
                           0.5, 0.2, 2.0, 0.3,  //
                           0.0, 0.1, 0.3, 1.5};
  const double b[n] = {1.0, -2.0, 0.5, 3.0};
  const double damping = 0.1, tol = 1e-12;
  const refrl::Index max_iters = 10;
  refrl::DenseOperator<double> op(n, A);
  double x[n];
  const refrl::CGInfo<double> info = refrl::conjugate_gradient<double>(op, b, max_iters, tol, damping, x);
  const double iterations = static_cast<double>(info.iterations);
  const double status = static_cast<double>(static_cast<int>(info.status));
  print("cg.A", n, n, A);
  print("cg.b", n, 1, b);
  print("cg.damping", 1, 1, &damping);
  print("cg.tol", 1, 1, &tol);
  print("cg.x", n, 1, x);
  print("cg.iterations", 1, 1, &iterations);
  print("cg.residual_norm", 1, 1, &info.residual_norm);
  print("cg.status", 1, 1, &status);  // 0 = converged
  return info.status == refrl::CGStatus::converged ? 0 : 1;
}
