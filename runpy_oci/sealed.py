"""The final execve into a container's program goes through runpy-oci-exec
(exec_helper.c), so that /proc/self/exe at that moment is not a writable file
of the host (CVE-2019-5736; see exec_helper.c): the helper runs from a
detached read-only bind mount of itself (open_tree + mount_setattr), where
every open for writing, also one by a container process through
/proc/PID/exe, fails with EROFS; where the kernel has no open_tree, from a
sealed memfd copy (writes fail, though an open for writing succeeds)."""
import errno
import fcntl
import os

from runpy_oci import kernel as k

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runpy-oci-exec")
TOKEN = "--runpy-oci-exec"
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def helper_fd():
    """A close-on-exec fd of the helper to exec; made while the host's files are visible."""
    sys = k.get()
    try:
        fd = sys.open_tree(-100, HELPER, k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)  # AT_FDCWD
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            raise
        return _memfd()
    try:
        sys.mount_setattr(fd, "", k.AT_EMPTY_PATH, attr_set=k.MOUNT_ATTR_RDONLY)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _memfd():
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


def execve(helper, path, args, env, report_fd=None):
    """execve(path, args, env), by way of the helper (an fd from ``helper_fd``),
    which resets the signal state; ``report_fd`` stays open through the
    helper and closes with the program's exec."""
    if report_fd is None:
        report_fd = -1
    else:
        os.set_inheritable(report_fd, True)
    os.execve(helper, ["runpy-oci-exec", TOKEN, str(report_fd), path, *args], env)
