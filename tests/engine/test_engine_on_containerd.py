"""The engine over real containerd (Debian's, private to the session):
`engine-py --containerd SOCKET` passes the container scenarios that
test_containers_api.py, test_exec_cli.py and test_logs_api.py run over the
engine's own containerd-py. They are imported here, so pytest runs them
again with this module's `engine_py` (the same docker CLI verbs: create,
start, stop, kill, wait, pause, rename, ps, prune, rm, exec, run in the
foreground, logs; refusals as dockerd's)."""
import base64
import json
import subprocess

import pytest

import test_logs_api
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
from test_attach_api import (  # noqa: F401
    test_docker_attach_follows_from_now_and_ends_at_the_exit, test_piped_stdin_reaches_the_container_and_its_end_ends_it,
    test_run_it_detach_keys_leave_the_container_running, test_run_it_is_an_interactive_shell)
from test_exec_cli import container, test_exec_as_dockerd_does_it, test_exec_through_the_cli  # noqa: F401
from test_logs_api import (  # noqa: F401
    names, test_a_tty_container_s_output_is_all_stdout_raw, test_log_opts_rotate_and_show_in_inspect,
    test_logs_as_dockerd_shows_them, test_logs_follow_ends_when_the_container_exits,
    test_logs_follow_sees_lines_as_they_come, test_logs_refused_as_dockerd_refuses_them,
    test_logs_timestamps_since_until, test_run_in_the_foreground_prints_stdout_and_stderr_apart_and_exits_with_the_code,
    test_run_with_log_driver_none_still_prints)

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
