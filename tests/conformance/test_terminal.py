"""process.terminal with --console-socket: the runtime sends the pty master
over a unix socket (SCM_RIGHTS), as containerd's shim expects."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

PROGRAM = (
    'echo "tty=$(tty)"; '
    'test -t 0 && echo "stdin=tty"; test -t 1 && echo "stdout=tty"; '
    'echo "console=$(stat -c %F:%t:%T /dev/console)"; '
    'echo "size=$(stty size)"; '
    'echo prompt; read line; echo "got=$line"'
)


def terminal_bundle(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 30, "width": 100}
    bundle.set_script(PROGRAM)
    return bundle


def converse(sock):
    out = sock.read_until(b"prompt")
    sock.write(b"hello over the pty\n")
    out += sock.read_until(b"got=hello over the pty")
    return out.decode(errors="replace").replace("\r\n", "\n")


def check_output(text):
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert lines["tty"] == "/dev/pts/0"
    assert lines["stdin"] == "tty"
    assert lines["stdout"] == "tty"
    assert lines["size"] == "30 100"
    # config-linux.md: /dev/console is the pty when terminal is true (pts major 136)
    assert lines["console"] == "character special file:88:0"
    assert lines["got"] == "hello over the pty"


def test_create_with_console_socket(runtime, bundle, console_socket):
    terminal_bundle(bundle)
    sock = console_socket()
    cid = runtime.new_id("tty")
    runtime.check(runtime.create(cid, bundle.path, console_socket=sock.path), "create")
    sock.receive()
    assert runtime.status(cid) == "created"
    runtime.check(runtime.start(cid), "start")
    check_output(converse(sock))
    runtime.wait_status(cid, "stopped")
    runtime.check(runtime.delete(cid), "delete")


def test_run_detached_with_console_socket(runtime, bundle, console_socket):
    terminal_bundle(bundle)
    sock = console_socket()
    cid = runtime.new_id("ttyrun")
    runtime.check(runtime.run(cid, bundle.path, detach=True, console_socket=sock.path), "run -d")
    sock.receive()
    check_output(converse(sock))
    runtime.wait_status(cid, "stopped")


def test_terminal_output_not_on_runtime_stdio(runtime, bundle, console_socket):
    bundle.config["process"]["terminal"] = True
    bundle.set_script("echo only-on-the-pty; echo also-pty >&2")
    sock = console_socket()
    cid = runtime.new_id("ttyio")
    created = runtime.check(runtime.create(cid, bundle.path, console_socket=sock.path), "create")
    sock.receive()
    runtime.check(runtime.start(cid), "start")
    out = sock.read_until(b"also-pty")
    assert b"only-on-the-pty" in out
    runtime.wait_status(cid, "stopped")
    assert "only-on-the-pty" not in created.out_path.read_text()
    assert "also-pty" not in created.err_path.read_text()
