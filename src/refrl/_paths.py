"""Where the installed package keeps the header-only C++ core and its CMake package config.

``refrl.get_include()`` and ``refrl.get_cmake_dir()``, in the manner of ``numpy.get_include()``
and ``pybind11.get_cmake_dir()``. The build (CMakeLists.txt, ``REFRL_INSTALL_HEADERS``)
installs ``cpp/include/refrl/*.hpp`` as ``refrl/include/refrl/*.hpp`` and the config as
``refrl/share/cmake/refrl/refrlConfig.cmake`` inside the package, so both are found by
searching the package's own directories:

- regular install (``pip install .``, a wheel): ``site-packages/refrl/include`` and
  ``site-packages/refrl/share/cmake/refrl``;
- editable development install (scikit-build-core with a ``build-dir``): the package's
  ``__path__`` holds the CMake install tree ``build/<wheel tag>/install/platlib/refrl`` next to
  ``src/refrl``, and the paths are in that install tree, a copy of ``cpp/include`` refreshed
  whenever the extension is rebuilt (on import with ``editable.rebuild=true``).
"""

from __future__ import annotations

from pathlib import Path

_INCLUDE = ("include",)
_INCLUDE_PROBE = ("include", "refrl", "common.hpp")
_CMAKE = ("share", "cmake", "refrl")
_CMAKE_PROBE = ("share", "cmake", "refrl", "refrlConfig.cmake")


def _find(probe: tuple[str, ...], found: tuple[str, ...], what: str) -> str:
    import refrl

    searched = [Path(p) for p in refrl.__path__]
    for root in searched:
        if root.joinpath(*probe).is_file():
            return str(root.joinpath(*found))
    raise FileNotFoundError(
        f"refrl's {what} is not installed in any of {[str(p) for p in searched]}: this refrl "
        "was not installed from its build (reinstall it with `pip install .` or an editable "
        "scikit-build-core install)"
    )


def get_include() -> str:
    """The directory to put on the include path for ``#include "refrl/gae.hpp"`` and the rest
    of the header-only C++ core (C++17, no other dependency).

    Raises ``FileNotFoundError`` if the headers are not installed with this package.
    """
    return _find(_INCLUDE_PROBE, _INCLUDE, "C++ headers (include/refrl/*.hpp)")


def get_cmake_dir() -> str:
    """The directory holding ``refrlConfig.cmake``: pass it as ``-Drefrl_DIR=...`` (or put it
    on ``CMAKE_PREFIX_PATH``) so that ``find_package(refrl CONFIG REQUIRED)`` defines the
    ``refrl::headers`` interface target.

    Raises ``FileNotFoundError`` if the CMake package config is not installed with this package.
    """
    return _find(_CMAKE_PROBE, _CMAKE, "CMake package config (share/cmake/refrl/refrlConfig.cmake)")
