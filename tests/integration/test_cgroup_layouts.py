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


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_container_sees_its_own_cgroup_root(layout, runtime, bundle):
    if layout != "hybrid" and not os.path.isdir("/sys/fs/cgroup/unified"):
        pytest.skip("the host is not hybrid; these layouts are derived from a hybrid one")
    cid = runtime.new_id()

    def change(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
        if layout == "v2":
            # device rules on v2 need an eBPF program runpy-oci does not load;
            # asking for them there is an error (tests/unit/test_cgroup_resources.py)
            del c["linux"]["resources"]["devices"]
    path = bundle(args=["sh", "-c", "cat /proc/self/cgroup; echo --; ls /sys/fs/cgroup"], change=change)
    prep = LAYOUTS[layout]
    script = f'{prep + " && " if prep else ""}exec "$0" --root "$1" run --bundle "$2" "$3"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                        runtime.binary, runtime.root, path, cid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    own, _, listing = r.stdout.partition("--\n")
    paths = [line.split(":", 2)[2] for line in own.split()]
    assert paths and all(p == "/" for p in paths), own
    if layout == "v2":
        assert "cgroup.controllers" in listing.split()
    else:
        assert {"memory", "pids", "cpu"} <= set(listing.split())
