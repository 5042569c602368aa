"""/dev: the default nodes and links (config-linux.md "Default Devices"),
and linux.devices."""
from __future__ import annotations

import pytest

from .harness import kv

pytestmark = pytest.mark.root

DEFAULT_DEVICES = {
    "/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
}


def stat_dev(runtime, bundle, paths):
    script = "; ".join(f"echo \"{p}=$(stat -L -c '%F:%t:%T' {p} 2>&1)\"" for p in paths)
    out = kv(runtime.probe(bundle, script))
    result = {}
    for p in paths:
        kind, major, minor = out[p].rsplit(":", 2)
        result[p] = (kind, int(major, 16), int(minor, 16))
    return result


def test_default_device_nodes(runtime, bundle):
    got = stat_dev(runtime, bundle, list(DEFAULT_DEVICES))
    for path, (major, minor) in DEFAULT_DEVICES.items():
        assert got[path] == ("character special file", major, minor), path


def test_default_devices_work(runtime, bundle):
    out = kv(runtime.probe(bundle,
        'echo x > /dev/null && echo "null=ok"; '
        'echo "zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d " ")"; '
        'if echo x > /dev/full 2>/dev/null; then echo "full=wrote"; else echo "full=ENOSPC"; fi; '
        'echo "urandom=$(head -c 16 /dev/urandom | wc -c)"'))
    assert out == {"null": "ok", "zero": "00000000", "full": "ENOSPC", "urandom": "16"}


@pytest.mark.parametrize("link,target", [
    ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
])
def test_default_dev_symlinks(runtime, bundle, link, target):
    out = runtime.probe(bundle, f"test -L {link} && readlink {link}")
    assert out.strip() == target


def test_dev_ptmx(runtime, bundle):
    out = kv(runtime.probe(bundle,
        'echo "link=$(readlink /dev/ptmx)"; '
        'echo "ptmx=$(stat -L -c %F:%t:%T /dev/ptmx)"; '
        'echo "pts=$(stat -c %F:%t:%T /dev/pts/ptmx)"'))
    # a symlink to pts/ptmx, or a bind mount of it (config-linux.md)
    assert out["link"] in ("pts/ptmx", "/dev/pts/ptmx") or out["ptmx"] == out["pts"]
    assert out["ptmx"] == "character special file:5:2"


def test_linux_devices_node(runtime, bundle):
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/custom/mynull", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1000, "gid": 1001,
    }]
    # the owner may write (the default capability set has no CAP_DAC_OVERRIDE)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = kv(runtime.probe(bundle,
        'echo "stat=$(stat -c %F:%t:%T:%a:%u:%g /dev/custom/mynull)"; '
        'echo data > /dev/custom/mynull && echo "write=ok"; '
        'echo "read=$(cat /dev/custom/mynull | wc -c)"'))
    assert out["stat"] == "character special file:1:3:640:1000:1001"
    assert out["write"] == "ok"
    assert out["read"] == "0"


def test_linux_devices_fifo(runtime, bundle):
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/myfifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0,
    }]
    out = runtime.probe(bundle, "stat -c %F:%a /dev/myfifo")
    assert out.strip() == "fifo:600"
