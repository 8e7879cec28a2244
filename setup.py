"""Build script: the metadata lives in pyproject.toml; this only adds the optional compiled
hot path (docs/development.md, "The compiled build").

A wheel is compiled with mypyc when all of these hold, and pure Python otherwise:

- ``RATETREE_COMPILE`` is not ``0``;
- it is a wheel or a regular install, not an editable one (an editable install stays pure,
  so edits under src/ are never shadowed by stale compiled modules);
- mypyc (it ships with mypy, a build requirement) imports, and a C compiler builds a test
  extension against this Python's headers.

It is all or nothing: if compiling any module fails, no compiled module is kept and the
wheel is the pure one, tagged ``py3-none-any``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext

# The modules that run on every acquire and release. Everything else (specs, config,
# explain, waiting, Redis, the CLI, the integrations) stays interpreted.
HOT_PATH = [
    "src/ratetree/core/buckets.py",
    "src/ratetree/core/gates.py",
    "src/ratetree/core/build.py",
    "src/ratetree/core/selection.py",
    "src/ratetree/core/leases.py",
    "src/ratetree/core/strategies/base.py",
    "src/ratetree/core/strategies/shuffle.py",
    "src/ratetree/core/strategies/round_robin.py",
    "src/ratetree/core/strategies/least_busy.py",
    "src/ratetree/core/strategies/levels.py",
    "src/ratetree/core/strategies/ranked.py",
    "src/ratetree/core/strategies/usage_based.py",
    "src/ratetree/core/strategies/latency_based.py",
    "src/ratetree/core/strategies/cost_based.py",
    "src/ratetree/state/memory.py",
    "src/ratetree/scheduler.py",
    "src/ratetree/admission.py",
]

# Commands that build or install a regular (non-editable) copy; anything else (metadata,
# sdist, editable_wheel, develop) never needs the compiled modules.
BUILDS = {"bdist_wheel", "build", "build_ext", "install"}


def say(message: str) -> None:
    print(f"ratetree setup.py: {message}", file=sys.stderr)


def compiler_works() -> bool:
    """Whether a C compiler builds an object file that includes Python.h."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler, get_python_inc

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write("#include <Python.h>\nint ratetree_probe(void) { return 0; }\n")
        try:
            compiler = new_compiler()
            customize_compiler(compiler)
            compiler.compile([source], output_dir=tmp, include_dirs=[get_python_inc()])
        except Exception as exc:  # any failure means: build the pure wheel
            say(f"no working C compiler ({type(exc).__name__}: {exc})")
            return False
    return True


def hot_path_extensions() -> list[Any]:
    """The mypyc extensions, or [] for the pure build (saying why)."""
    if os.environ.get("RATETREE_COMPILE", "1").strip() == "0":
        say("RATETREE_COMPILE=0: building pure Python")
        return []
    if not BUILDS.intersection(sys.argv[1:]):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        say("mypyc is not installed: building pure Python")
        return []
    if not compiler_works():
        say("building pure Python")
        return []
    try:
        return list(mypycify(HOT_PATH, opt_level="3", debug_level="0"))
    except BaseException as exc:  # mypyc exits on a type error: still build the pure wheel
        say(f"mypyc failed ({type(exc).__name__}: {exc}): building pure Python")
        return []


class AllOrNothing(build_ext):
    """build_ext that, when any compiled module fails to build, removes every one it built
    and leaves the pure package (and a pure wheel tag) instead of a half-compiled one."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            say(f"compiling failed ({type(exc).__name__}: {exc}): building pure Python")
            self.fall_back()

    def fall_back(self) -> None:
        for ext in self.extensions:
            path = self.get_ext_fullpath(ext.name)
            if os.path.exists(path):
                os.remove(path)
        shutil.rmtree(os.path.join(self.build_temp), ignore_errors=True)
        self.extensions = []
        dist: Distribution = self.distribution
        dist.ext_modules = []
        # bdist_wheel read "has extensions" before the build; tell it the wheel is pure.
        if "bdist_wheel" in dist.command_obj:
            dist.command_obj["bdist_wheel"].root_is_pure = True  # type: ignore[attr-defined]


setup(ext_modules=hot_path_extensions(), cmdclass={"build_ext": AllOrNothing})
