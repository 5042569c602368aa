"""System facts the API reports: `/_ping`'s answer and `/version` in dockerd
20.10's shape, with this engine's own version strings."""
import os
import subprocess
import sys
import threading
import time
from typing import Callable

VERSION = "0.1.0"
API_VERSION, MIN_API_VERSION = "1.41", "1.24"
BUILDER_VERSION = "1"  # the legacy builder: the docker CLI sends `POST /build?version=1`
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}


def go_arch(machine: str | None = None) -> str:
    """The architecture as Go names it (GOARCH), which docker clients print and compare."""
    machine = machine or os.uname().machine
    return _GO_ARCH.get(machine, machine)


def runtime_version(path: str) -> tuple[str, str]:
    """(version, commit) from `<runtime> --version`, as dockerd reads runc's:
    the first line's last word and the `commit:` line ("" when it has none)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return "", ""
    lines = out.splitlines()
    version = lines[0].split()[-1] if lines and lines[0].split() else ""
    commit = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("commit:")), "")
    return version, commit


class SystemService:
    """`containerd_version()` and the runtime's version are asked once, when
    /version is first asked (each is a round trip or a process)."""

    def __init__(self, default_runtime_path: str, containerd_version: Callable[[], tuple[str, str]]):
        self._runtime_path = default_runtime_path
        self._containerd_version = containerd_version
        self._components: list | None = None
        self._lock = threading.Lock()
        self.build_time = time.strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00", time.gmtime(os.path.getmtime(__file__)))

    def version(self) -> dict:
        details = {"ApiVersion": API_VERSION, "Arch": go_arch(), "BuildTime": self.build_time,
                   "Experimental": "false", "GitCommit": VERSION, "GoVersion": f"python{sys.version.split()[0]}",
                   "KernelVersion": os.uname().release, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
        return {
            "Platform": {"Name": "engine-py"},
            "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}, *self._others()],
            "Version": VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": VERSION, "GoVersion": details["GoVersion"], "Os": "linux", "Arch": details["Arch"],
            "KernelVersion": details["KernelVersion"], "BuildTime": self.build_time,
        }

    def _others(self) -> list:
        with self._lock:
            if self._components is None:
                containerd, containerd_commit = self._containerd_version()
                runtime, runtime_commit = runtime_version(self._runtime_path)
                self._components = [
                    {"Name": "containerd", "Version": containerd, "Details": {"GitCommit": containerd_commit}},
                    {"Name": "runc", "Version": runtime, "Details": {"GitCommit": runtime_commit}},
                ]
            return self._components
