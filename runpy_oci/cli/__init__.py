"""runpy-oci's entry point: parse with the fast table-driven parser, run the
verb, turn RuntimeFailure into runc's error output and exit status 1."""
import os
import sys

from runpy_oci import log
from runpy_oci.cli.table import NeedsHelp, ShowVersion, UsageError, parse
from runpy_oci.errors import RuntimeFailure


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        cmd = parse(argv)
    except NeedsHelp:
        from runpy_oci.cli.human import run_click

        return run_click(argv)
    except ShowVersion:
        sys.stdout.write(version_text())
        return 0
    except UsageError as e:
        sys.stderr.write(f"runpy-oci: {e}\n")
        return 1
    log.configure(cmd.globals)
    module = __import__(f"runpy_oci.cli.verbs.{cmd.verb.name}", fromlist=["run"])
    try:
        return module.run(cmd) or 0
    except RuntimeFailure as e:
        log.fatal(str(e))
        return 1
    except OSError as e:
        log.fatal(f"{e.strerror}: {e.filename}" if e.filename else str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()


def root_dir(cmd):
    return os.path.abspath(cmd.globals["root"])


def version_text():
    """runc's shape: "NAME version X", then "key: value" lines: the commit
    (dockerd's `docker info` reads it as the runtime's), the spec, and what
    runs it (runc: go, libseccomp)."""
    from runpy_oci.state import OCI_VERSION

    v = sys.version_info
    lines = ["runpy-oci version 0.1.0", "commit: 0.1.0", f"spec: {OCI_VERSION}", f"python: {v[0]}.{v[1]}.{v[2]}"]
    libseccomp = _libseccomp_version()
    if libseccomp:
        lines.append(f"libseccomp: {libseccomp}")
    return "\n".join(lines) + "\n"


def _libseccomp_version():
    """The libseccomp that seccomp profiles are compiled with, or None where it is missing."""
    import ctypes

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_version.restype = ctypes.POINTER(Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"
