"""The exec service over a private containerd-py: processes run in a running
container as dockerd runs them, their output relayed, their input passed
on, their exit code recorded before an attached start returns."""
import queue

import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from containers_helpers import eventually
from engine.containerd.exec import ContainerdExecs
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.oci import security
from engine.services.exec import ExecService
from engine.services.exec_io import Attached

pytestmark = pytest.mark.root


@pytest.fixture
def execs(engine, tmp_path):
    """An exec service; afterwards no FIFO of an ended exec is left."""
    fifos = tmp_path / "exec-fifos"
    service = ExecService(engine.service, ContainerdExecs(engine.client), str(fifos))
    yield service
    for record in engine.service.store.all():
        engine.service.remove(record.id, force=True)
    eventually(lambda: not list(fifos.glob("*")))


def _running(engine, host_config=None, **config):
    record = engine.service.create({"Image": "busybox", "Cmd": ["sleep", "1000"], **config}, host_config or {})
    engine.service.start(record.id)
    return record


class Client:
    """A client's side of an attached start: input given up front, output collected."""

    def __init__(self, *chunks: bytes):
        self.input: queue.Queue = queue.Queue()
        for chunk in chunks:
            self.input.put(chunk)
        self.out, self.err = bytearray(), bytearray()

    def end_input(self):
        self.input.put(b"")

    def attached(self):
        return Attached(lambda n: self.input.get(), self.out.extend, self.err.extend)


def _run(execs, record, cmd, client=None, **config):
    client = client or Client()
    exec_id = execs.create(record.id, {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, **config})
    execs.start(exec_id, client.attached())
    return exec_id, client


def test_output_apart_and_the_exit_code_recorded_before_start_returns(engine, execs):
    record = _running(engine)
    exec_id = execs.create(record.id, {"AttachStdout": True, "AttachStderr": True,
                                       "Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
    assert execs.ids_of(record.id) == [exec_id]
    created = execs.inspect(exec_id)
    assert (created["Running"], created["ExitCode"], created["Pid"]) == (False, None, 0)
    client = Client()
    execs.start(exec_id, client.attached())
    assert (bytes(client.out), bytes(client.err)) == (b"out\n", b"err\n")
    ended = execs.inspect(exec_id)
    assert (ended["Running"], ended["ExitCode"], ended["ContainerID"]) == (False, 3, record.id)
    assert ended["Pid"] > 0
    assert ended["ProcessConfig"] == {"tty": False, "entrypoint": "sh",
                                      "arguments": ["-c", "echo out; echo err >&2; exit 3"], "privileged": False}
    assert execs.ids_of(record.id) == []
    assert engine.client.tasks.list()[0].status == "running"  # the container goes on


def test_input_is_passed_on_and_its_end_is_the_process_eof(engine, execs):
    record = _running(engine)
    client = Client(b"hello ", b"there\n")
    client.end_input()
    exec_id, _ = _run(execs, record, ["cat"], client, AttachStdin=True)
    assert bytes(client.out) == b"hello there\n"
    assert execs.inspect(exec_id)["ExitCode"] == 0


def test_user_env_and_workdir(engine, execs):
    record = _running(engine, Env=["KEPT=1", "REPLACED=old"], WorkingDir="/etc")
    script = "id -u; id -g; id -G; pwd; echo $KEPT $REPLACED $ADDED $HOSTNAME"
    _, as_is = _run(execs, record, ["sh", "-c", script])
    assert as_is.out.decode().split("\n") == ["0", "0", "0", "/etc", f"1 old {record.id[:12]}", ""]
    _, changed = _run(execs, record, ["sh", "-c", script], User="nobody", WorkingDir="/tmp",
                      Env=["REPLACED=new", "ADDED=2"])
    assert changed.out.decode().split("\n") == ["65534", "65534", "65534", "/tmp", f"1 new 2 {record.id[:12]}", ""]


def test_an_unknown_user_fails_the_start_with_126(engine, execs):
    record = _running(engine)
    exec_id = execs.create(record.id, {"Cmd": ["true"], "User": "nosuchuser"})
    with pytest.raises(Exception, match="^unable to find user nosuchuser: no matching entries in passwd file$"):
        execs.start(exec_id, Client().attached())
    assert execs.inspect(exec_id)["ExitCode"] == 126
    assert execs.ids_of(record.id) == []


def test_no_new_privileges_is_the_containers(engine, execs):
    record = _running(engine, host_config={"SecurityOpt": ["no-new-privileges"]})
    _, client = _run(execs, record, ["grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status"])
    status = dict(line.split(":\t") for line in client.out.decode().splitlines())
    assert status == {"CapEff": "00000000a80425fb", "NoNewPrivs": "1"}  # dockerd's default capabilities


def test_privileged_asks_for_every_capability(engine, execs, monkeypatch):
    """The spec only: this host withholds CAP_SYS_RESOURCE, so no runtime can grant them all here."""
    record = _running(engine)
    asked = []

    def recording(container_id, exec_id, process, stdio):
        asked.append(process)
        raise System("not run")

    monkeypatch.setattr(execs.execs, "start", recording)
    for privileged in (False, True):
        with pytest.raises(System):
            _run(execs, record, ["true"], Privileged=privileged)
    plain, privileged = (p["capabilities"] for p in asked)
    assert plain["bounding"] == list(security.DEFAULT_CAPABILITIES)
    assert privileged == {key: list(security.ALL_CAPABILITIES)
                          for key in ("bounding", "effective", "inheritable", "permitted")}


def test_a_tty_exec_and_its_detach_keys(engine, execs):
    record = _running(engine)
    _, client = _run(execs, record, ["tty"], Tty=True)
    assert client.out.startswith(b"/dev/pts/") and client.out.endswith(b"\r\n")
    client = Client(b"typed\r", b"\x10", b"\x11")
    exec_id = execs.create(record.id, {"AttachStdin": True, "AttachStdout": True, "Tty": True, "Cmd": ["cat"]})
    execs.start(exec_id, client.attached())  # returns at the detach keys; cat goes on
    assert execs.inspect(exec_id)["Running"] and execs.ids_of(record.id) == [exec_id]
    engine.service.kill(record.id)
    eventually(lambda: execs.inspect(exec_id)["ExitCode"] is not None)


def test_an_attached_start_ends_when_the_container_stops(engine, execs):
    import threading
    record = _running(engine)
    client = Client()
    exec_id = execs.create(record.id, {"AttachStdout": True, "Cmd": ["sh", "-c", "echo up; exec sleep 1000"]})
    attached = threading.Thread(target=execs.start, args=(exec_id, client.attached()))
    attached.start()
    eventually(lambda: bytes(client.out) == b"up\n")
    engine.service.kill(record.id)
    attached.join()
    assert (execs.inspect(exec_id)["Running"], execs.inspect(exec_id)["ExitCode"]) == (False, 137)


def test_detached_runs_in_the_background(engine, execs):
    record = _running(engine)
    exec_id = execs.create(record.id, {"Cmd": ["sh", "-c", "echo dropped; exit 5"]})
    execs.start(exec_id)
    eventually(lambda: execs.inspect(exec_id)["ExitCode"] == 5)
    assert execs.inspect(exec_id)["Running"] is False


def test_a_background_child_holding_the_output_does_not_hold_the_start(engine, execs):
    record = _running(engine)
    exec_id, client = _run(execs, record, ["sh", "-c", "sleep 1000 & echo started"])
    assert bytes(client.out) == b"started\n"
    assert execs.inspect(exec_id)["ExitCode"] == 0


def test_dockerds_refusals(engine, execs):
    stopped = engine.service.create({"Image": "busybox", "Cmd": ["true"]}, {}, "stopped")
    with pytest.raises(NotFound, match="^No such container: nosuch$"):
        execs.create("nosuch", {"Cmd": ["true"]})
    with pytest.raises(Conflict, match=f"^Container {stopped.id} is not running$"):
        execs.create("stopped", {"Cmd": ["true"]})
    record = _running(engine)
    with pytest.raises(InvalidParameter, match="^No exec command specified$"):
        execs.create(record.id, {"Cmd": []})
    with pytest.raises(InvalidParameter, match="^json: cannot unmarshal string into Go struct field "
                                               "ExecConfig.Cmd of type \\[\\]string$"):
        execs.create(record.id, {"Cmd": "true"})
    with pytest.raises(NotFound, match="^No such exec instance: nope$"):
        execs.inspect("nope")
    with pytest.raises(NotFound, match="^No such exec instance: nope$"):
        execs.start("nope")
    exec_id, _ = _run(execs, record, ["true"])
    with pytest.raises(Conflict, match=f"^Error: Exec command {exec_id} has already run$"):
        execs.start(exec_id)
    engine.service.pause(record.id)
    with pytest.raises(Conflict, match=f"^Container {record.id} is paused, unpause the container before exec$"):
        execs.create(record.id, {"Cmd": ["true"]})
    engine.service.unpause(record.id)


def test_a_missing_command_fails_the_start_with_126(engine, execs):
    record = _running(engine)
    exec_id = execs.create(record.id, {"Cmd": ["no-such-command"]})
    with pytest.raises(Exception, match="no-such-command"):
        execs.start(exec_id, Client().attached())
    assert (execs.inspect(exec_id)["ExitCode"], execs.inspect(exec_id)["Running"]) == (126, False)
    assert engine.client.tasks.list()[0].status == "running"


def test_an_exec_of_a_removed_container_is_gone(engine, execs):
    record = _running(engine)
    exec_id, _ = _run(execs, record, ["true"])
    engine.service.remove(record.id, force=True)
    with pytest.raises(NotFound, match=f"^No such exec instance: {exec_id}$"):
        execs.inspect(exec_id)
