"""User and time namespaces, --no-pivot, and the console socket."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

pytestmark = pytest.mark.root


def test_user_namespace_maps_root_to_a_host_range(runtime, bundle):
    def change(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    bundle(args=["sh", "-c", "id -u; cat /proc/self/uid_map; test -c /dev/null && echo null-ok"], change=change)
    # The mapped root is an unprivileged host user: the bundle must be
    # reachable by it, and pytest's temporary directories are private to root.
    public = tempfile.mkdtemp(prefix="runpy-userns-", dir="/tmp")
    try:
        os.chmod(public, 0o755)
        path = os.path.join(public, "bundle")
        shutil.copytree(bundle.path, path, symlinks=True)
        cid = runtime.new_id()
        r = runtime("run", "--bundle", path, cid)
    finally:
        shutil.rmtree(public)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert "null-ok" in r.stdout


def test_time_namespace_offsets_boottime(runtime, bundle):
    def change(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 10}}

    cid = runtime.new_id()
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    r = runtime("run", "--bundle", bundle(args=["cat", "/proc/uptime"], change=change), cid)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split()[0]) >= host_uptime + 86400 * 10


def test_no_pivot_runs_the_container(runtime, bundle):
    cid = runtime.new_id()
    r = runtime("run", "--no-pivot", "--bundle", bundle(args=["sh", "-c", "ls /bin/busybox && echo $$"]), cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/bin/busybox", "1"]


def test_console_socket_receives_the_pty_master(runtime, bundle, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    received = {}

    def accept():
        conn, _ = server.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        received["name"], received["fd"] = msg.decode(), fds[0]
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    cid = runtime.new_id()
    path = bundle(args=["sh", "-c", "tty; read line; echo got:$line"],
                  change=lambda c: c["process"].update(terminal=True))
    try:
        r = runtime("create", "--bundle", path, "--console-socket", sock_path, cid)
        t.join(10)
        assert r.returncode == 0, r.stderr
        assert received["name"].startswith("/dev/pts/")
        assert runtime("start", cid).returncode == 0
        master = received["fd"]
        output = b""
        deadline = time.monotonic() + 10
        while b"/dev/pts/" not in output and time.monotonic() < deadline:
            output += os.read(master, 4096)
        os.write(master, b"hello\n")
        while b"got:hello" not in output and time.monotonic() < deadline:
            output += os.read(master, 4096)
        assert b"got:hello" in output, output
        os.close(master)
    finally:
        server.close()


def test_terminal_without_console_socket_is_refused_at_create(runtime, bundle):
    cid = runtime.new_id()
    r = runtime("create", "--bundle", bundle(change=lambda c: c["process"].update(terminal=True)), cid)
    assert r.returncode == 1
    assert "cannot allocate tty" in r.stderr
    assert runtime("list", "-q").stdout == ""


def test_foreground_run_relays_its_own_terminal(runtime, bundle):
    """`run` with process.terminal and no console socket: like `runc run -t`,
    the runtime takes the pty itself and relays it to its own stdio (here a
    pty made by script(1), so stdin is a terminal)."""
    cid = runtime.new_id()
    path = bundle(args=["sh", "-c", "tty; read line; echo got:$line"],
                  change=lambda c: c["process"].update(terminal=True))
    command = f"{runtime.binary} --root {runtime.root} run --bundle {path} {cid}"
    feeder = subprocess.Popen(["sh", "-c", "sleep 1; echo hello; sleep 1"], stdout=subprocess.PIPE)
    r = subprocess.run(["script", "-qec", command, "/dev/null"], stdin=feeder.stdout,
                       capture_output=True, text=True, timeout=30)
    feeder.wait()
    assert r.returncode == 0, r.stderr
    assert "/dev/pts/0" in r.stdout
    assert "got:hello" in r.stdout
