"""A validated ``linux.seccomp`` compiled into a libseccomp filter and loaded.

The init compiles the filter before it pivots (libseccomp and this module
must be loaded while the host's libraries are visible) and loads it at the
last moment, as runc does: right before execve when no_new_privs is set,
else before the capabilities are dropped (loading then needs CAP_SYS_ADMIN).
An exec loads the filter as BPF instead (``export``, runpy_oci.seccomp_bpf).
"""
import errno
import os

from runpy_oci._seccomp import ffi, lib
from runpy_oci.errors import RuntimeFailure

_UNKNOWN_SYSCALL = lib.__NR_SCMP_ERROR  # (module level: a class body would mangle the name)
_FIXED_ACTIONS = {
    "SCMP_ACT_KILL": lib.SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": lib.SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": lib.SCMP_ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": lib.SCMP_ACT_TRAP,
    "SCMP_ACT_ALLOW": lib.SCMP_ACT_ALLOW,
    "SCMP_ACT_LOG": lib.SCMP_ACT_LOG,
    "SCMP_ACT_NOTIFY": lib.SCMP_ACT_NOTIFY,
}
_OPERATORS = {
    "SCMP_CMP_NE": lib.SCMP_CMP_NE, "SCMP_CMP_LT": lib.SCMP_CMP_LT, "SCMP_CMP_LE": lib.SCMP_CMP_LE,
    "SCMP_CMP_EQ": lib.SCMP_CMP_EQ, "SCMP_CMP_GE": lib.SCMP_CMP_GE, "SCMP_CMP_GT": lib.SCMP_CMP_GT,
    "SCMP_CMP_MASKED_EQ": lib.SCMP_CMP_MASKED_EQ,
}
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": lib.SCMP_FLTATR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": lib.SCMP_FLTATR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": lib.SCMP_FLTATR_CTL_SSB,
}


def action_value(name, errno_ret):
    """libseccomp's action code; ERRNO and TRACE carry errnoRet (EPERM if unset, as runc)."""
    if name == "SCMP_ACT_ERRNO":
        return lib.rp_act_errno(errno.EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return lib.rp_act_trace(errno.EPERM if errno_ret is None else errno_ret)
    return _FIXED_ACTIONS[name]


def _check(ret, what):
    if ret < 0:
        raise RuntimeFailure(f"{what}: {os.strerror(-ret)}")


class Filter:
    """A compiled filter, loaded by ``load()``."""

    def __init__(self, sc):
        default = action_value(sc.default_action, sc.default_errno_ret)
        self._ctx = ffi.gc(lib.seccomp_init(default), lib.seccomp_release)
        if self._ctx == ffi.NULL:
            raise RuntimeFailure(f"{sc.path}.defaultAction: libseccomp refused {sc.default_action}")
        ctx = self._ctx
        # no_new_privs is process.noNewPrivileges' business, not the filter's
        _check(lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_NNP, 0), f"{sc.path}: seccomp attribute")
        for i, flag in enumerate(sc.flags):
            _check(lib.seccomp_attr_set(ctx, _FLAGS[flag], 1), f"{sc.path}.flags[{i}]: {flag}")
        for i, arch in enumerate(sc.architectures):
            token = lib.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_"):].lower().encode())
            if token == 0:
                raise RuntimeFailure(f"{sc.path}.architectures[{i}]: libseccomp does not know {arch}")
            ret = lib.seccomp_arch_add(ctx, token)
            if ret != -errno.EEXIST:
                _check(ret, f"{sc.path}.architectures[{i}]: {arch}")
        for rule in sc.syscalls:
            self._add(rule, default)

    def _add(self, rule, default):
        action = action_value(rule.action, rule.errno_ret)
        if action == default:
            return  # libseccomp refuses a rule that changes nothing
        # Conditions on distinct arguments all must hold (one rule); several
        # on the same argument are alternatives (a rule each), as in runc.
        indexes = [a.index for a in rule.args]
        groups = [rule.args] if len(set(indexes)) == len(indexes) else [[a] for a in rule.args]
        for name in rule.names:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == _UNKNOWN_SYSCALL:
                # Unknown to this libseccomp or architecture: skipped, as runc
                # does, so profiles that list newer syscalls keep working.
                continue
            for group in groups:
                cmps = ffi.new("struct scmp_arg_cmp[]", max(len(group), 1))
                for j, a in enumerate(group):
                    cmps[j].arg = a.index
                    cmps[j].op = _OPERATORS[a.op]
                    cmps[j].datum_a = a.value
                    cmps[j].datum_b = a.value_two
                _check(lib.seccomp_rule_add_array(self._ctx, action, nr, len(group), cmps),
                       f"{rule.path}: cannot add the rule for {name}")

    def load(self):
        _check(lib.seccomp_load(self._ctx), "linux.seccomp: cannot load the filter")

    def load_for(self, agent_fd, channel):
        """Load; with SCMP_ACT_NOTIFY rules (``agent_fd`` set), hand the
        listener fd over ``agent_fd`` to the runtime, which passes it on to
        the seccomp agent, and tell it so on ``channel``."""
        self.load()
        if agent_fd is not None:
            import socket

            with socket.socket(fileno=agent_fd) as sock:
                socket.send_fds(sock, [b"seccomp"], [self.notify_fd()])
            channel.send("seccomp")

    def export(self):
        """The filter as the BPF program ``load()`` would generate."""
        fd = os.memfd_create("seccomp.bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(self._ctx, fd), "linux.seccomp: cannot generate the filter")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def notify_fd(self):
        """The listener fd of a loaded filter with SCMP_ACT_NOTIFY rules (for the seccomp agent)."""
        fd = lib.seccomp_notify_fd(self._ctx)
        _check(fd, "linux.seccomp: no listener fd for SCMP_ACT_NOTIFY")
        return fd


def send_to_agent(sc, listener_fd, pid, state):
    """The runtime-spec's seccomp agent protocol: one connection to listenerPath, one
    container process state (JSON) with the listener fd (SCM_RIGHTS), then close."""
    import socket

    from runpy_oci import fastjson

    message = {"ociVersion": state["ociVersion"], "fds": ["seccompFd"], "pid": pid,
               "metadata": sc.listener_metadata, "state": state}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sc.listener_path)
            socket.send_fds(s, [fastjson.dumps(message).encode()], [listener_fd])
    except OSError as e:
        raise RuntimeFailure(f"{sc.path}.listenerPath: cannot send the seccomp fd to {sc.listener_path}: "
                             f"{e.strerror}") from None
