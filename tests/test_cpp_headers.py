"""The header-only C++ core on its own: configure with plain cmake (no Python, no pybind11),
build cpp/tests/test_headers.cpp and run it through ctest; then the headers as an includer sees
them, with g++ and (when installed) clang++: no macros leak, plain -std=c++17 compiles and passes,
the opt-in flags vectorise.

cmake (and ninja) come with the ``test`` extra (``pip install ".[test]"``). If cmake or a C++
compiler is missing this test fails with a message saying so: it is never skipped silently.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import find_tool

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_cpp_headers_build_and_pass_ctest(tmp_path):
    cmake, ctest = find_tool("cmake"), find_tool("ctest")
    if cmake is None or ctest is None:
        pytest.fail('cmake/ctest not found: install the test extra (pip install ".[test]") or a system cmake >= 3.18')
    if not (ROOT / "cpp" / "tests" / "test_headers.cpp").exists():
        pytest.fail(f"cpp/tests/test_headers.cpp not found under {ROOT}: run the tests from a source checkout")
    configure = [cmake, "-S", str(ROOT), "-B", str(tmp_path), "-DREFRL_BUILD_CPP_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"]
    ninja = find_tool("ninja")
    if ninja is not None:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    _run(configure, ROOT)
    _run([cmake, "--build", str(tmp_path)], ROOT)
    proc = _run([ctest, "--output-on-failure", "-V"], tmp_path)
    assert "100% tests passed" in proc.stdout
    assert "0 failures" in proc.stdout  # the harness's own summary line


# ---- the public headers as a C++17 program of one's own includes them, with each compiler present
INCLUDE = ROOT / "cpp" / "include"
HEADERS = sorted((INCLUDE / "refrl").glob("*.hpp"))
VECTORISATION_FLAGS = ["-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno"]
COMPILERS = [cxx for cxx in ("g++", "clang++") if shutil.which(cxx)]


def _compile(cxx: str, source: str, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    src = tmp_path / "program.cpp"
    src.write_text(source)
    cmd = [cxx, "-std=c++17", f"-I{INCLUDE}", *flags, str(src)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return proc


def _macros(cxx: str, source: str, tmp_path: Path) -> set[str]:
    out = _compile(cxx, source, tmp_path, "-E", "-dM").stdout
    return {line.split()[1].split("(")[0] for line in out.splitlines() if line.startswith("#define ")}


def test_compilers_found():
    assert HEADERS, "cpp/include/refrl/*.hpp not found: run the tests from a source checkout"
    if not COMPILERS:
        pytest.fail("neither g++ nor clang++ found: the header tests below need a C++ compiler")


@pytest.mark.parametrize("cxx", COMPILERS)
def test_public_headers_define_no_macros(cxx, tmp_path):
    """Including every refrl header defines exactly the macros that including the standard
    headers they use defines: nothing of refrl's leaks into the includer."""
    std = sorted({m for h in HEADERS for m in re.findall(r"#include <([a-z_]+)>", h.read_text())})
    with_std = "".join(f"#include <{h}>\n" for h in std)
    with_refrl = with_std + "".join(f'#include "refrl/{h.name}"\n' for h in HEADERS)
    leaked = _macros(cxx, with_refrl, tmp_path) - _macros(cxx, with_std, tmp_path)
    assert not leaked, f"refrl's headers define macros: {sorted(leaked)}"


PROGRAM = (ROOT / "cpp" / "tests" / "test_headers.cpp").read_text() if (ROOT / "cpp" / "tests").exists() else ""


@pytest.mark.parametrize("cxx", COMPILERS)
@pytest.mark.parametrize(
    "flags", [[], VECTORISATION_FLAGS, ["-DREFRL_VECTOR_EXT=0"]], ids=["no-flags", "vectorised", "plain-loops"]
)
def test_headers_compile_as_plain_cxx17_and_pass(cxx, flags, tmp_path):
    """cpp/tests/test_headers.cpp (every header, every kernel variant the CPU has) built with
    nothing but -std=c++17 -O2 (and the opt-in flags, or with the SIMD code switched off) runs
    and passes."""
    (tmp_path / "check.hpp").write_text((ROOT / "cpp" / "tests" / "check.hpp").read_text())
    _compile(cxx, PROGRAM, tmp_path, "-O2", "-Wall", "-Wextra", "-Wpedantic", *flags, "-o", "program")
    proc = subprocess.run([str(tmp_path / "program")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failures" in proc.stdout


VECTORISED = """#include "refrl/adam.hpp"
#include "refrl/surrogate.hpp"
template void refrl::adam_step<float>(refrl::Index, float*, const float*, float*, float*, long long, double, double,
                                      double, double);
template refrl::SurrogateStats refrl::clipped_surrogate<double>(refrl::Index, const double*, const double*,
                                                                const double*, const double*, double, double*);
"""


@pytest.mark.parametrize("cxx", COMPILERS)
def test_headers_loops_vectorise_with_the_opt_in_flags(cxx, tmp_path):
    """With refrl_enable_vectorisation()'s flags the compiler reports Adam's and the surrogate's
    loops vectorised; without them Adam's is not (sqrt sets errno)."""
    report = ["-fopt-info-vec-optimized"] if cxx == "g++" else ["-Rpass=loop-vectorize"]
    seen = {}
    for name, flags in (("plain", []), ("vectorised", VECTORISATION_FLAGS)):
        err = _compile(cxx, VECTORISED, tmp_path, "-O2", "-c", "-o", "program.o", *report, *flags).stderr
        seen[name] = {m for m in re.findall(r"refrl/(\w+\.hpp):\d+:\d+: (?:optimized: loop vectorized|remark: vectorized loop)", err)}
    assert {"adam.hpp", "surrogate.hpp"} <= seen["vectorised"], seen
    assert "adam.hpp" not in seen["plain"], seen
