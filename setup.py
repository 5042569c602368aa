"""Builds what is compiled at install time; all metadata is in pyproject.toml.

- the cffi extensions of runpy_oci (API mode);
- containerd-py-shim, a small C program (one runs beside every container,
  see containerd_py/tasks/DESIGN.md), into the containerd_py.shim package.
"""
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

SHIM_SOURCE = "containerd_py/shim/shim.c"
SHIM_BINARY = "containerd_py/shim/containerd-py-shim"


class BuildExtAndShim(build_ext):
    def run(self):
        super().run()
        out_dir = os.path.dirname(SHIM_BINARY) if self.inplace else os.path.join(self.build_lib,
                                                                                   os.path.dirname(SHIM_BINARY))
        os.makedirs(out_dir, exist_ok=True)
        objects = self.compiler.compile([SHIM_SOURCE], output_dir=self.build_temp,
                                        extra_postargs=["-O2", "-Wall", "-Wextra"])
        self.compiler.link_executable(objects, os.path.basename(SHIM_BINARY), output_dir=out_dir)


setup(cffi_modules=["runpy_oci/_build_sys.py:ffibuilder", "runpy_oci/_build_seccomp.py:ffibuilder"],
      cmdclass={"build_ext": BuildExtAndShim})
