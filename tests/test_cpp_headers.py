"""The header-only C++ core on its own: configure with plain cmake (no Python, no pybind11),
build cpp/tests/test_headers.cpp and run it through ctest.

cmake (and ninja) come with the ``test`` extra (``pip install ".[test]"``). If cmake or a C++
compiler is missing this test fails with a message saying so: it is never skipped silently.
"""

from __future__ import annotations

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
