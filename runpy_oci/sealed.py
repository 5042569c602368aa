"""The final execve into a container's program goes through runpy-oci-exec
(exec_helper.c) run from a sealed memfd copy, so that /proc/self/exe at that
moment is not a file on the host (CVE-2019-5736; see exec_helper.c)."""
import fcntl
import os

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runpy-oci-exec")
TOKEN = "--runpy-oci-exec"
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def memfd():
    """A sealed, close-on-exec memfd holding the helper; made while the host's files are visible."""
    fd = os.memfd_create("runpy-oci-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        src = os.open(HELPER, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            while size > 0:
                size -= os.sendfile(fd, src, None, size)
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def execve(helper_fd, path, args, env):
    """execve(path, args, env), by way of the sealed helper."""
    os.execve(helper_fd, ["runpy-oci-exec", TOKEN, path, *args], env)
