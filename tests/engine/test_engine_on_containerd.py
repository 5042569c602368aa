"""The engine over real containerd (Debian's, private to the session):
`engine-py --containerd SOCKET` passes the container scenarios that
test_containers_api.py runs over the engine's own containerd-py. They are
imported here, so pytest runs them again with this module's `engine_py`
(the same docker CLI verbs: create, start, stop, kill, wait, pause, rename,
ps, prune, rm, refusals as dockerd's)."""
import base64
import json
import subprocess

import pytest

from containerd_py.api.containerd.runtime import runc_options_pb2

from containers_helpers import busybox, real_containerd  # noqa: F401
from dockerd_oracle import RUNPY_OCI
from engine_daemon import NAMESPACE, running_engine
from test_containers_api import (  # noqa: F401
    name, test_init_forwards_the_stop_signal_and_reaps_as_dockerd, test_kill_with_a_signal_and_pause,
    test_name_conflict_matches_dockerd, test_ps_filters_and_prune, test_refusals_match_dockerd,
    test_rename_and_prefix_lookup, test_rm_of_a_running_container_matches_dockerd,
    test_run_detached_then_ps_inspect_stop_start_rm, test_start_of_started_and_stop_of_stopped_match_dockerd,
    test_wait_gives_the_exit_code)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def engine_py(real_containerd, busybox):  # noqa: F811
    """engine-py in a network namespace of its own, over the session's real containerd."""
    with running_engine(str(busybox), containerd=real_containerd.address) as engine:
        yield engine


def test_the_containers_are_real_containerds(engine_py, real_containerd, name):  # noqa: F811
    """The task runs under containerd's own shim (containerd-shim-runc-v2) with
    runpy-oci, the engine's default runtime, as its runc binary."""
    cid = engine_py.docker("run", "-d", "--name", name, "busybox", "sleep", "1000").stdout.strip()
    ctr = ["ctr", "--address", real_containerd.address, "-n", NAMESPACE]
    info = subprocess.run([*ctr, "containers", "info", cid], capture_output=True, text=True, check=True).stdout
    container = json.loads(info)
    assert container["Runtime"]["Name"] == "io.containerd.runc.v2"
    options = runc_options_pb2.Options.FromString(base64.b64decode(container["Runtime"]["Options"]["value"]))
    assert options.binary_name == RUNPY_OCI
    tasks = subprocess.run([*ctr, "tasks", "ls"], capture_output=True, text=True, check=True).stdout
    assert any(line.split()[0] == cid and line.split()[-1] == "RUNNING" for line in tasks.splitlines()[1:])
