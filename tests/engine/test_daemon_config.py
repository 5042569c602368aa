"""engine.daemon's configuration: dockerd's flags over daemon.json, refused
in dockerd's words (the messages were taken from dockerd 20.10 itself)."""
import json

import pytest

from containerd_py.endpoint import StartupError
from engine.daemon import DEFAULT_SOCKET, _parser, load_config, parse_host


def config(tmp_path, *argv, file=None):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(file) if isinstance(file, dict) else (file or ""))
    return load_config(_parser().parse_args(["--config-file", str(path), *argv]))


def refused(tmp_path, *argv, file=None) -> str:
    with pytest.raises(StartupError) as e:
        config(tmp_path, *argv, file=file)
    return str(e.value)


def test_defaults(tmp_path):
    c = config(tmp_path)
    assert c.hosts == [f"unix://{DEFAULT_SOCKET}"]
    assert (c.data_root, c.exec_root, c.pidfile) == ("/var/lib/engine-py", "/run/engine-py",
                                                     "/run/engine-py/engine-py.pid")
    assert c.live_restore and c.default_runtime == "runpy-oci" and c.runtimes["runpy-oci"].endswith("runpy-oci")
    assert c.containerd == "" and c.containerd_namespace == "engine-py" and c.log_level == "info"


def test_flags_and_file_are_merged(tmp_path):
    c = config(tmp_path, "-H", "unix:///tmp/a.sock", "-H", "tcp://127.0.0.1:2376", "--exec-root", "/tmp/x",
               "--add-runtime", "mine=/bin/true", "--containerd", "/run/containerd/containerd.sock", "-D",
               "--live-restore=false",
               file={"data-root": "/tmp/d", "insecure-registries": ["127.0.0.1:5000"], "default-runtime": "mine",
                     "log-opts": {"max-size": "10m"}, "containerd-namespace": "ours"})
    assert c.hosts == ["unix:///tmp/a.sock", "tcp://127.0.0.1:2376"]
    assert (c.data_root, c.exec_root, c.pidfile) == ("/tmp/d", "/tmp/x", "/tmp/x/engine-py.pid")
    assert c.runtimes["mine"] == "/bin/true" and c.default_runtime == "mine"
    assert c.containerd == "/run/containerd/containerd.sock" and c.containerd_namespace == "ours"
    assert c.log_level == "debug" and not c.live_restore
    assert c.insecure_registries == ["127.0.0.1:5000"] and c.log_opts == {"max-size": "10m"}


def test_runtimes_from_the_file(tmp_path):
    c = config(tmp_path, file={"runtimes": {"custom": {"path": "/usr/bin/true"}}, "default-runtime": "custom"})
    assert c.runtimes["custom"] == "/usr/bin/true"


def test_an_unknown_key_is_refused_naming_it(tmp_path):
    path = tmp_path / "daemon.json"
    assert refused(tmp_path, file={"foo": 1, "debug": True, "bar": 2}) == (
        f"unable to configure the Docker daemon with file {path}: "
        "the following directives don't match any configuration option: foo, bar")


def test_a_key_also_given_as_a_flag_is_dockerds_conflict(tmp_path):
    path = tmp_path / "daemon.json"
    message = refused(tmp_path, "-H", "unix:///tmp/s.sock", "-l", "info",
                      file={"log-level": "debug", "hosts": ["unix:///a"]})
    assert message == (f"unable to configure the Docker daemon with file {path}: the following directives are "
                       "specified both as a flag and in the configuration file: hosts: (from flag: "
                       "[unix:///tmp/s.sock], from file: [unix:///a]), log-level: (from flag: info, from file: debug)")


def test_a_missing_file_is_an_error_only_when_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(StartupError, match=f"with file {missing}: open {missing}: no such file or directory"):
        load_config(_parser().parse_args(["--config-file", str(missing)]))


def test_bad_json_and_bad_values(tmp_path):
    assert "invalid JSON" in refused(tmp_path, file="{")
    assert "cannot unmarshal" in refused(tmp_path, file={"debug": "yes"})
    assert refused(tmp_path, "-l", "bogus") == "unable to parse logging level: bogus"
    assert "invalid runtime argument: foo" in refused(tmp_path, "--add-runtime", "foo")
    assert "default runtime nope is not among the runtimes" in refused(tmp_path, "--default-runtime", "nope")


@pytest.mark.parametrize("host, parsed", [
    ("unix:///tmp/x.sock", "unix:///tmp/x.sock"),
    ("unix://", f"unix://{DEFAULT_SOCKET}"),
    ("tcp://127.0.0.1:2376", "tcp://127.0.0.1:2376"),
    ("tcp://127.0.0.1", "tcp://127.0.0.1:2375"),
    ("tcp://:2376", "tcp://0.0.0.0:2376"),
    ("tcp://[::1]:2376", "tcp://[::1]:2376"),
])
def test_hosts_are_parsed_as_dockerd_parses_them(host, parsed):
    assert parse_host(host) == parsed


@pytest.mark.parametrize("host, message", [
    ("bogus://x", 'invalid argument "bogus://x" for "-H, --host" flag: Invalid bind address format: bogus://x'),
    ("/tmp/x.sock", 'invalid argument "/tmp/x.sock" for "-H, --host" flag: Invalid bind address format: /tmp/x.sock'),
    ("tcp://127.0.0.1:notaport", 'invalid argument "tcp://127.0.0.1:notaport" for "-H, --host" flag: '
                                 'invalid port ":notaport" after host'),
])
def test_bad_hosts_are_refused_in_dockerds_words(host, message):
    with pytest.raises(StartupError) as e:
        parse_host(host)
    assert str(e.value) == message
