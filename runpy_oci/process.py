"""The container process's own attributes, applied by the init just before it
waits for ``start``: rlimits, OOM score, sysctls, hostname, credentials, cwd,
and finding the program to exec."""
import os
import stat

from runpy_oci import kernel as k
from runpy_oci.capabilities import Plan
from runpy_oci.errors import RuntimeFailure


def write_sysctls(sysctl):
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise RuntimeFailure(f"linux.sysctl.{key}: cannot write {path}: {e.strerror}") from None


def set_hostname(spec):
    if spec.hostname:
        k.get().sethostname(spec.hostname)
    if spec.domainname:
        k.get().setdomainname(spec.domainname)


def apply_rlimits(proc):
    for r in proc.rlimits:
        try:
            k.get().setrlimit(r.type, r.soft, r.hard)
        except OSError as e:
            raise RuntimeFailure(f"process.rlimits: cannot set {r.type} to {r.soft}/{r.hard}: {e}") from None


def make_undumpable():
    """Non-dumpable from here to the execve (which resets it), called before the
    switch to the container's user: once its capabilities are the container's,
    a container process could otherwise open our /proc/PID/exe, the runtime's
    interpreter (CVE-2019-5736)."""
    k.get().prctl(k.PR_SET_DUMPABLE, 0)


def apply_oom_score_adj(proc):
    if proc.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(proc.oom_score_adj))


def close_fds_from(first, keep=()):
    """Close every descriptor from ``first`` on but those in ``keep``: no runtime
    descriptor may leak into the container (CVE-2024-21626)."""
    for fd in sorted(keep):
        if fd > first:
            os.closerange(first, fd)
        if fd >= first:
            first = fd + 1
    os.closerange(first, 1 << 20)


def env_dict(items):
    """process.env ("K=V" strings) for execve; a later entry wins."""
    env = {}
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def program_env(proc):
    """The program's environment: process.env, with HOME from the user's
    /etc/passwd entry in the container (or "/") when it is not set, as runc
    sets it."""
    env = env_dict(proc.env)
    if "HOME" not in env:
        env["HOME"] = _passwd_home(proc.user.uid)
    return env


_PASSWD_LIMIT = 1 << 20  # bytes of /etc/passwd looked at


def _passwd_home(uid):
    """The container's own file, which it may have made hostile: a FIFO or a
    device is not waited on or read (only a regular file), nor more of it
    than _PASSWD_LIMIT."""
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        text = os.read(fd, _PASSWD_LIMIT).decode(errors="replace")
    except OSError:
        return "/"
    finally:
        os.close(fd)
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid):
            return fields[5] or "/"
    return "/"


def env_value(env, name, default=None):
    prefix = name + "="
    for item in env:
        if item.startswith(prefix):
            return item[len(prefix):]
    return default


def find_executable(proc):
    """The path to exec, searched on the container's PATH like runc (exec(3)'s rules)."""
    prog = proc.args[0]
    if "/" in prog:
        candidates = [prog if prog.startswith("/") else os.path.join(proc.cwd, prog)]
    else:
        path = env_value(proc.env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or ".", prog) for d in path.split(":")]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    if "/" in prog:
        raise RuntimeFailure(f'exec: "{prog}": stat {prog}: no such file or directory')
    raise RuntimeFailure(f'exec: "{prog}": executable file not found in $PATH')


def switch_user(proc):
    """Drop to the configured uid/gid and groups with the configured
    capabilities, then umask and no_new_privs."""
    plan = None
    if proc.capabilities is not None:
        plan = Plan(proc.capabilities)
        plan.before_user_switch()
    user = proc.user
    try:
        os.setgroups(user.additional_gids)
    except PermissionError:
        # setgroups is denied in a user namespace whose gid_map was written
        # by an unprivileged parent; only a change of groups is an error then.
        if user.additional_gids:
            raise
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    if plan is not None:
        plan.after_user_switch()
    if user.umask is not None:
        os.umask(user.umask)
    if proc.no_new_privileges:
        k.get().prctl(k.PR_SET_NO_NEW_PRIVS, 1)


def enter_cwd(cwd):
    try:
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(f"process.cwd: cannot change to {cwd}: {e.strerror}") from None
