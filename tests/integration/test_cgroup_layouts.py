"""runpy-oci on pure v1, pure v2 and hybrid hosts. This host is hybrid; the
other two layouts are made in a private mount namespace (the host's mounts
are untouched), and the container runs with its own cgroup namespace."""
import os
import subprocess

import pytest

pytestmark = pytest.mark.root

LAYOUTS = {
    "hybrid": "",
    "v1": "umount /sys/fs/cgroup/unified",
    "v2": "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup",
}


def _run_in_layout(layout, runtime, path, cid):
    """`runtime run` in a private mount namespace with the cgroup layout made there."""
    if layout != "hybrid" and not os.path.isdir("/sys/fs/cgroup/unified"):
        pytest.skip("the host is not hybrid; these layouts are derived from a hybrid one")
    prep = LAYOUTS[layout]
    script = f'{prep + " && " if prep else ""}exec "$0" --root "$1" run --bundle "$2" "$3"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           runtime.binary, runtime.root, path, cid], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_container_sees_its_own_cgroup_root(layout, runtime, bundle):
    cid = runtime.new_id()

    def change(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
    path = bundle(args=["sh", "-c", "cat /proc/self/cgroup; echo --; ls /sys/fs/cgroup"], change=change)
    r = _run_in_layout(layout, runtime, path, cid)
    assert r.returncode == 0, r.stderr
    own, _, listing = r.stdout.partition("--\n")
    paths = [line.split(":", 2)[2] for line in own.split()]
    assert paths and all(p == "/" for p in paths), own
    if layout == "v2":
        assert "cgroup.controllers" in listing.split()
    else:
        assert {"memory", "pids", "cpu"} <= set(listing.split())


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_device_rules_are_enforced(layout, runtime, bundle):
    """runc's default rules (deny all, then the usual /dev nodes): on v1 through
    devices.allow/deny, on v2 through the device program attached to the cgroup."""
    def change(c):
        c["linux"]["devices"] = [{"path": "/dev/blocked", "type": "b", "major": 7, "minor": 0, "fileMode": 0o660}]
    script = "head -c1 /dev/zero > /dev/null && echo zero-ok; echo x > /dev/null && echo null-ok; head -c1 /dev/blocked"
    r = _run_in_layout(layout, runtime, bundle(args=["sh", "-c", script], change=change), runtime.new_id())
    assert r.stdout.splitlines() == ["zero-ok", "null-ok"], r.stdout + r.stderr
    assert r.returncode == 1 and "/dev/blocked: Operation not permitted" in r.stderr
