"""Builds what is compiled at install time; all metadata is in pyproject.toml.

- the cffi extensions of runpy_oci (API mode);
- runpy-oci-exec, a static helper for the last execve into a container
  (runpy_oci/exec_helper.c), into the runpy_oci package;
- containerd-py-shim, a small C program (one runs beside every container,
  see containerd_py/tasks/DESIGN.md), into the containerd_py.shim package;
- engine-py-logger, a small C program (one runs beside every container that
  logs, see engine/logs/DESIGN.md), into the engine.logs package;
- engine-py-init, the static init of `docker run --init` (engine/init/init.c).
"""
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

# (source, program, extra link arguments)
PROGRAMS = (
    ("runpy_oci/exec_helper.c", "runpy_oci/runpy-oci-exec", ["-static", "-s"]),
    ("containerd_py/shim/shim.c", "containerd_py/shim/containerd-py-shim", []),
    ("engine/logs/logger.c", "engine/logs/engine-py-logger", ["-lz"]),
    ("engine/init/init.c", "engine/init/engine-py-init", ["-static", "-s"]),
)


class BuildExtAndPrograms(build_ext):
    def run(self):
        super().run()
        for source, program, link_args in PROGRAMS:
            out_dir = os.path.dirname(program) if self.inplace else os.path.join(self.build_lib,
                                                                                   os.path.dirname(program))
            os.makedirs(out_dir, exist_ok=True)
            objects = self.compiler.compile([source], output_dir=self.build_temp,
                                            extra_postargs=["-O2", "-Wall", "-Wextra"])
            self.compiler.link_executable(objects, os.path.basename(program), output_dir=out_dir,
                                          extra_postargs=link_args)


setup(cffi_modules=["runpy_oci/_build_sys.py:ffibuilder", "runpy_oci/_build_seccomp.py:ffibuilder"],
      cmdclass={"build_ext": BuildExtAndPrograms})
