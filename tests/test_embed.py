"""Embedding the C++ core from the *installed* package: the headers and the CMake package config
that ``pip install .`` puts in the wheel, found through ``refrl.get_include()`` and
``refrl.get_cmake_dir()``, and the two programs of examples/embed/ built against them with cmake
(``find_package(refrl CONFIG REQUIRED)``) and run, their numbers held to refrl.kernels and
refrl.oracle.

cmake, ninja and pybind11 come with the ``test`` extra. Without a C++ compiler the build tests are
skipped with that reason; a missing cmake or a failing build is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import find_tool

import refrl
from refrl import kernels, oracle

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "embed"
VECTORISATION_FLAGS = ("-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno")


def _cmake() -> str:
    cmake = find_tool("cmake")
    if cmake is None:
        pytest.fail('cmake not found: install the test extra (pip install ".[test]") or a system cmake >= 3.18')
    return cmake


def _require_cxx_compiler() -> None:
    cxx = os.environ.get("CXX")
    if cxx and shutil.which(cxx.split()[0]):
        return
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        pytest.skip("no C++ compiler found (CXX, c++, g++, clang++): the embed examples cannot be built")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _build(source: Path, build: Path, *options: str) -> str:
    """Configure (Release, Ninja if available) and build one example; the configure output."""
    cmake = _cmake()
    configure = [
        cmake, "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        f"-Drefrl_DIR={refrl.get_cmake_dir()}", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *options,
    ]  # fmt: skip
    ninja = find_tool("ninja")
    if ninja is not None:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    out = _run(configure, source).stdout
    _run([cmake, "--build", str(build)], source)
    return out


def _compile_command(build: Path, source_name: str) -> str:
    entries = json.loads((build / "compile_commands.json").read_text())
    (entry,) = [e for e in entries if e["file"].endswith(source_name)]
    return entry.get("command") or " ".join(entry["arguments"])


def _installed_under_package(path: str) -> bool:
    return any(Path(path).resolve().is_relative_to(Path(p).resolve()) for p in refrl.__path__)


def test_installed_headers_and_cmake_config():
    include, cmake_dir = Path(refrl.get_include()), Path(refrl.get_cmake_dir())
    assert _installed_under_package(str(include)) and _installed_under_package(str(cmake_dir))
    assert (cmake_dir / "refrlConfig.cmake").is_file()
    assert (cmake_dir / "refrlConfigVersion.cmake").is_file()
    # every header of the source tree is installed, unchanged (a stale install fails here)
    sources = sorted((ROOT / "cpp" / "include" / "refrl").glob("*.hpp"))
    assert sources, "cpp/include/refrl/*.hpp not found: run the tests from a source checkout"
    installed = sorted((include / "refrl").glob("*.hpp"))
    assert [p.name for p in installed] == [p.name for p in sources]
    for src, dst in zip(sources, installed):
        assert dst.read_bytes() == src.read_bytes(), f"installed {dst.name} differs from cpp/include: reinstall refrl"


def _parse(stdout: str) -> dict[str, np.ndarray]:
    """`name rows cols v...` lines -> arrays of shape [rows, cols]."""
    out = {}
    for line in stdout.splitlines():
        name, rows, cols, *values = line.split()
        out[name] = np.array([float(v) for v in values], dtype=np.float64).reshape(int(rows), int(cols))
    return out


def test_find_package_through_cmake_prefix_path(tmp_path):
    """Without refrl_DIR: CMAKE_PREFIX_PATH naming site-packages (the directory holding the
    refrl package) finds <prefix>/refrl/share/cmake/refrl, as it finds pybind11."""
    _require_cxx_compiler()  # configuring a CXX project needs one
    package_dir = Path(refrl.get_cmake_dir()).parents[2]
    assert package_dir.name == "refrl"
    proc = _run(
        [_cmake(), "-S", str(EXAMPLES / "cpp"), "-B", str(tmp_path), f"-DCMAKE_PREFIX_PATH={package_dir.parent}"],
        EXAMPLES,
    )
    assert f"refrl {refrl.__version__}, headers in {refrl.get_include()}" in proc.stdout


def test_embed_cpp_program(tmp_path):
    _require_cxx_compiler()
    build = tmp_path / "cpp"
    # C++14 asked for, with warnings on: refrl::headers' cxx_std_17 compile feature must raise it.
    configure_out = _build(
        EXAMPLES / "cpp", build, "-DCMAKE_CXX_STANDARD=14", "-DCMAKE_CXX_EXTENSIONS=OFF",
        "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Wpedantic",
    )  # fmt: skip
    assert f"refrl {refrl.__version__}, headers in {refrl.get_include()}" in configure_out
    command = _compile_command(build, "main.cpp")
    assert "-std=c++17" in command
    assert not any(flag in command for flag in VECTORISATION_FLAGS), "refrl::headers must not impose flags"

    exe = build / ("refrl_embed_demo.exe" if os.name == "nt" else "refrl_embed_demo")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = _parse(proc.stdout)

    # GAE: the example's rollout has both kinds of episode end
    term, trunc = r["gae.terminated"].astype(bool), r["gae.truncated"].astype(bool)
    assert term.any() and trunc.any()
    inputs = (r["gae.rewards"], r["gae.values"], r["gae.next_values"], term, trunc)
    gamma, lam = float(r["gae.gamma"][0, 0]), float(r["gae.lam"][0, 0])
    for reference in (oracle.gae(*inputs, gamma=gamma, lam=lam), kernels.gae(*inputs, gamma=gamma, lam=lam)):
        np.testing.assert_allclose(r["gae.advantages"], reference.advantages, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r["gae.returns"], reference.returns, rtol=1e-12, atol=1e-12)

    # CG on the example's SPD system, against the kernel, the oracle and a direct solve
    A, b = r["cg.A"], r["cg.b"][:, 0]
    damping, tol = float(r["cg.damping"][0, 0]), float(r["cg.tol"][0, 0])
    x = r["cg.x"][:, 0]
    assert np.allclose(A, A.T) and np.all(np.linalg.eigvalsh(A) > 0)
    assert r["cg.status"][0, 0] == 0  # converged
    np.testing.assert_allclose(x, np.linalg.solve(A + damping * np.eye(len(b)), b), rtol=1e-10, atol=1e-12)
    for reference in (
        kernels.conjugate_gradient(lambda v: A @ v, b, iters=10, tol=tol, damping=damping),
        oracle.conjugate_gradient(A, b, iters=10, tol=tol, damping=damping),
    ):
        assert reference.converged
        assert int(r["cg.iterations"][0, 0]) == reference.iterations
        np.testing.assert_allclose(x, reference.x, rtol=1e-12, atol=1e-12)


def test_embed_pybind11_module(tmp_path, rng):
    _require_cxx_compiler()
    pybind11 = pytest.importorskip("pybind11", reason='pybind11 comes with the test extra (pip install ".[test]")')
    build = tmp_path / "pybind11"
    _build(
        EXAMPLES / "pybind11", build, f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        f"-DPython_EXECUTABLE={sys.executable}",
    )  # fmt: skip
    command = _compile_command(build, "module.cpp")
    assert all(flag in command for flag in VECTORISATION_FLAGS), "refrl_enable_vectorisation() was not applied"

    (so,) = [p for p in build.iterdir() if p.name.startswith("refrl_embed_gae.") and p.suffix in (".so", ".pyd")]
    spec = importlib.util.spec_from_file_location("refrl_embed_gae", so)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    T, N = 37, 11  # N = 11: one block of 8 envs, then the 1-env tail (no block of 4)
    rewards, values, next_values = (rng.standard_normal((T, N)) for _ in range(3))
    terminated, truncated = rng.random((T, N)) < 0.1, rng.random((T, N)) < 0.1
    assert terminated.any() and truncated.any()
    args = (rewards, values, next_values, terminated, truncated)
    adv, ret = module.gae(*args, 0.99, 0.95)
    for reference in (oracle.gae(*args, gamma=0.99, lam=0.95), kernels.gae(*args, gamma=0.99, lam=0.95)):
        np.testing.assert_allclose(adv, reference.advantages, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ret, reference.returns, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="values"):
        module.gae(rewards, values[:-1], next_values, terminated, truncated, 0.99, 0.95)
