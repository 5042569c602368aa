"""The log sink and log service over a private containerd-py and over real
containerd: json-file through engine-py-logger, `none`, logs with each
option, attach (output from now, stdin, StdinOnce, detach keys, TTY)."""
import os
import threading

import pytest

from containers_helpers import busybox, containerd_py, engine_on, real_containerd  # noqa: F401 (fixtures)
from containers_helpers import eventually
from logs_fixtures import Client, logged_engine
from engine.errors import Conflict, InvalidParameter, System, Unimplemented
from engine.logs.sink import LoggerSink
from engine.services.logs import AttachRequest, LogsRequest

pytestmark = pytest.mark.root


@pytest.fixture(params=["containerd-py", "containerd"])
def logged(request, busybox, tmp_path):
    """Over containerd-py (its C shim) and real containerd (its runc shim, with runpy-oci as its runc)."""
    daemon = request.getfixturevalue("containerd_py" if request.param == "containerd-py" else "real_containerd")
    with logged_engine(daemon.address, busybox, tmp_path) as made:
        yield made


def test_json_file_log_has_both_streams_and_is_whole_at_the_exit(logged):
    record = logged.run(["sh", "-c", "echo out; echo err >&2; echo more"])
    assert logged.service.wait(record.id)["StatusCode"] == 0
    assert record.log_path == str(logged.engine.data_root / "containers" / record.id / f"{record.id}-json.log")
    # two pipes: the order between the streams is the logger's
    assert sorted(logged.lines(record.id)) == [("stderr", b"err\n"), ("stdout", b"more\n"), ("stdout", b"out\n")]
    assert logged.lines(record.id, stdout=False) == [("stderr", b"err\n")]
    assert logged.lines(record.id, stderr=False) == [("stdout", b"out\n"), ("stdout", b"more\n")]
    assert len(logged.lines(record.id, tail=1)) == 1
    assert record.host_config["LogConfig"] == {"Type": "json-file", "Config": {}}


def test_log_opts_rotate_and_bad_ones_are_refused_at_create_or_start(logged):
    with pytest.raises(InvalidParameter, match="unknown log opt 'max-sise' for json-file log driver"):
        logged.service.create({"Image": "busybox"}, {"LogConfig": {"Type": "json-file",
                                                                   "Config": {"max-sise": "1k"}}})
    with pytest.raises(InvalidParameter, match="logger: no log driver named 'syslogx' is registered"):
        logged.service.create({"Image": "busybox"}, {"LogConfig": {"Type": "syslogx"}})
    assert logged.service.store.all() == []
    bad = logged.service.create({"Image": "busybox"}, {"LogConfig": {"Config": {"max-file": "0"}}})
    with pytest.raises(System, match="^failed to initialize logging driver: max-file cannot be less than 1$"):
        logged.service.start(bad.id)  # values are read at the start, as dockerd's driver reads them
    assert logged.service.store.get(bad.id).state.error.startswith("failed to initialize logging driver")
    logged.service.remove(bad.id)
    record = logged.run(["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"],
                        host_config={"LogConfig": {"Type": "json-file", "Config": {"max-size": "2k",
                                                                                   "max-file": "3"}}})
    logged.service.wait(record.id)
    assert os.path.exists(record.log_path + ".2") and not os.path.exists(record.log_path + ".3")
    assert logged.lines(record.id, tail=2) == [("stdout", b"line 298\n"), ("stdout", b"line 299\n")]


def test_daemon_default_opts_apply_to_its_driver_only(containerd_py, busybox, tmp_path):
    sink = LoggerSink(str(tmp_path / "data" / "containers"), str(tmp_path / "exec"), "json-file", {"max-file": "2"})
    with engine_on(containerd_py.address, tmp_path / "data", busybox, log_sink=sink) as engine:
        plain = engine.service.create({"Image": "busybox"}, {})
        own = engine.service.create({"Image": "busybox"}, {"LogConfig": {"Config": {"max-size": "1m"}}})
        none = engine.service.create({"Image": "busybox"}, {"LogConfig": {"Type": "none"}})
        assert plain.host_config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2"}}
        assert own.host_config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1m"}}
        assert none.host_config["LogConfig"] == {"Type": "none", "Config": {}}
    with pytest.raises(InvalidParameter, match="failed to set log opts: unknown log opt 'maxfile' for json-file"):
        LoggerSink(str(tmp_path), str(tmp_path), "json-file", {"maxfile": "0"})


def test_none_has_no_logs_but_attach_still_sees_the_output(logged):
    record = logged.service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo hidden; echo seen >&2"]},
                                   {"LogConfig": {"Type": "none"}})
    attachment = logged.logs.attach(record.id, AttachRequest(stdout=True, stderr=True, stream=True),
                                    threading.Event())
    logged.service.start(record.id)
    assert sorted((e.stream, e.line) for e in attachment.output()) == [("stderr", b"seen\n"), ("stdout", b"hidden\n")]
    assert record.log_path == ""
    with pytest.raises(Unimplemented, match="configured logging driver does not support reading"):
        logged.lines(record.id)
    logged.service.remove(record.id)
    assert not os.path.exists(os.path.join(logged.sink.exec_root, "containers", record.id))


def test_follow_ends_when_the_container_exits_and_since_until_filter(logged):
    record = logged.run(["sh", "-c", "echo first; read x; echo second"], OpenStdin=True)
    tty, entries = logged.logs.logs(record.id, LogsRequest(follow=True), threading.Event())
    assert next(entries).line == b"first\n"
    logged.sink.write_stdin(record.id, b"go\n")
    assert [e.line for e in entries] == [b"second\n"]
    times = [e.time for e in logged.logs.logs(record.id, LogsRequest(), threading.Event())[1]]
    assert logged.lines(record.id, since=times[1]) == [("stdout", b"second\n")]
    assert logged.lines(record.id, until=times[0]) == [("stdout", b"first\n")]


def test_follow_of_a_stopped_container_reads_what_is_there_and_ends(logged):
    record = logged.run(["echo", "done"])
    logged.service.wait(record.id)
    assert logged.lines(record.id, follow=True) == [("stdout", b"done\n")]


def test_follow_ends_when_the_client_goes(logged):
    record = logged.run(["sh", "-c", "echo up; sleep 1000"])
    gone = threading.Event()
    tty, entries = logged.logs.logs(record.id, LogsRequest(follow=True), gone)
    assert next(entries).line == b"up\n"
    gone.set()
    assert list(entries) == []


def _attach(logged, ref, **request):
    return logged.logs.attach(ref, AttachRequest(stream=True, **request), threading.Event())


def test_attach_before_start_sees_everything_and_ends_at_the_exit(logged):
    record = logged.service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo a; echo b >&2; exit 4"]}, {})
    attachment = _attach(logged, record.id, stdout=True, stderr=True)
    logged.service.start(record.id)
    assert sorted((e.stream, e.line) for e in attachment.output()) == [("stderr", b"b\n"), ("stdout", b"a\n")]
    assert record.state.exit_code == 4


def test_attach_follows_from_now_and_logs_replays(logged):
    record = logged.run(["sh", "-c", "echo before; read x; echo after"], OpenStdin=True)
    eventually(lambda: logged.lines(record.id) == [("stdout", b"before\n")])
    now = _attach(logged, record.id, stdout=True)
    replay = _attach(logged, record.id, stdout=True, logs=True)
    logged.sink.write_stdin(record.id, b"go\n")
    assert [e.line for e in now.output()] == [b"after\n"]
    assert [e.line for e in replay.output()] == [b"before\n", b"after\n"]


def _relayed(attachment, client):
    thread = threading.Thread(target=attachment.relay_stdin, args=(client.inflow.read,), daemon=True)
    thread.start()
    return thread


def test_stdin_once_closes_the_stdin_when_the_client_input_ends(logged):
    record = logged.service.create({"Image": "busybox", "Cmd": ["cat"], "OpenStdin": True, "StdinOnce": True}, {})
    attachment = _attach(logged, record.id, stdin=True, stdout=True)
    client = Client()
    relay = _relayed(attachment, client)
    client.send(b"x\ny")  # before the start: held until the container's stdin exists
    logged.service.start(record.id)
    client.inflow.end()
    assert b"".join(e.line for e in attachment.output()) == b"x\ny"
    relay.join()
    attachment.close()
    assert record.state.exit_code == 0


def test_without_stdin_once_the_client_input_ending_ends_the_attach(logged):
    record = logged.run(["sh", "-c", "cat; echo never"], OpenStdin=True)
    attachment = _attach(logged, record.id, stdin=True, stdout=True)
    client = Client()
    relay = _relayed(attachment, client)
    client.send(b"hello\n")
    client.inflow.end()
    assert [e.line for e in attachment.output()] in ([b"hello\n"], [])
    relay.join()
    attachment.close()
    assert record.state.running
    eventually(lambda: logged.lines(record.id) == [("stdout", b"hello\n")])


def test_detach_keys_end_a_tty_attach_and_the_container_goes_on(logged):
    record = logged.run(["cat"], OpenStdin=True, Tty=True)
    attachment = _attach(logged, record.id, stdin=True, stdout=True, detach_keys=b"\x10\x11")
    client = Client()
    relay = _relayed(attachment, client)
    client.send(b"abc\r")
    out = attachment.output()
    seen = b""
    while b"abc" not in seen:
        seen += next(out).line
    client.send(b"\x10\x11")
    relay.join()
    assert attachment.detached
    list(out)
    attachment.close()
    assert record.state.running


def test_tty_output_goes_to_stdout_and_resize_reaches_the_terminal(logged):
    record = logged.run(["sh", "-c", "read x; stty size; echo err >&2"], OpenStdin=True, Tty=True)
    logged.logs.resize(record.id, 33, 111)
    logged.sink.write_stdin(record.id, b"\n")
    logged.service.wait(record.id)
    lines = logged.lines(record.id)
    assert {stream for stream, _ in lines} == {"stdout"}
    assert b"33 111\r\n" in b"".join(line for _, line in lines)
    with pytest.raises(Conflict, match="is not running"):
        logged.logs.resize(record.id, 1, 1)


def test_a_paused_container_refuses_attach(logged):
    record = logged.run(["sleep", "1000"])
    logged.service.pause(record.id)
    with pytest.raises(Conflict, match="You cannot attach to a paused container, unpause it first"):
        _attach(logged, record.id, stdout=True)
    logged.service.unpause(record.id)


def _zombie_children() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                found.append(entry)
    return found


def test_the_engines_own_logger_is_reaped_when_it_ended_first(logged):
    """A container with a stdin and no TTY: its logger (the engine's child)
    ends with the output, before the exit is handled; it is reaped all the same."""
    record = logged.run(["echo", "hi"], OpenStdin=True)
    logged.service.wait(record.id)
    assert logged.lines(record.id) == [("stdout", b"hi\n")]
    assert _zombie_children() == []
