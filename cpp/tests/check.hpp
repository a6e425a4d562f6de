#pragma once
// The tiny harness of the C++-only tests: CHECK counts checks and failures (printing each
// failure), main() reports both and returns 1 if any check failed. One executable per test file.
#include <cmath>
#include <cstdio>

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    ++checks;                                                                        \
    if (!(cond)) {                                                                   \
      ++failures;                                                                    \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                                \
  } while (0)

#define CHECK_NEAR(a, b, tol) CHECK(std::fabs(static_cast<double>(a) - static_cast<double>(b)) <= (tol))
