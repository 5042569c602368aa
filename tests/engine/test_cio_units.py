"""The pure parts of cp and commit: dockerd's path forms, Go's file modes,
the --change instructions and their merge, the image name."""
import stat

import pytest

from engine.errors import InvalidParameter
from engine.services.commit import CommitService, merge
from engine.services.container_fs import absolute_path, go_file_mode
from engine.services.image_changes import apply_changes


@pytest.mark.parametrize("given, expected", [
    ("etc/passwd", "/etc/passwd"), ("/etc/../etc/./passwd", "/etc/passwd"), ("/dir/", "/dir/"),
    ("/dir/.", "/dir/."), (".", "/."), ("/", "/"), ("//", "/"), ("../../x", "/x"),
])
def test_paths_as_dockerd_cleans_them_keeping_a_trailing_dot_or_slash(given, expected):
    assert absolute_path(given) == expected


@pytest.mark.parametrize("mode, expected", [
    (stat.S_IFREG | 0o644, 0o644), (stat.S_IFDIR | 0o755, (1 << 31) | 0o755), (stat.S_IFLNK | 0o777, (1 << 27) | 0o777),
    (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666), (stat.S_IFIFO | 0o600, (1 << 25) | 0o600),
    (stat.S_IFREG | stat.S_ISUID | 0o755, (1 << 23) | 0o755), (stat.S_IFDIR | stat.S_ISVTX | 0o777,
                                                                (1 << 31) | (1 << 20) | 0o777),
])
def test_modes_as_gos_file_mode_numbers_them(mode, expected):
    assert go_file_mode(mode) == expected


def test_change_instructions_in_their_forms():
    config = apply_changes({"WorkingDir": "/app", "Env": ["A=1"]}, [
        'CMD ["echo", "hi"]', "ENV B 2", "ENV C=3 D=\"four four\"", "WORKDIR sub", "VOLUME /data /logs",
        'VOLUME ["/json"]', "EXPOSE 53/udp", "USER 1000:1000", "ONBUILD RUN true", "   ",
        "HEALTHCHECK --interval=1m30s --retries=3 CMD wget -q localhost"])
    assert config["Cmd"] == ["echo", "hi"]
    assert config["Env"] == ["A=1", "B=2", "C=3", "D=four four"]
    assert config["WorkingDir"] == "/app/sub"
    assert config["Volumes"] == {"/data": {}, "/logs": {}, "/json": {}}
    assert config["ExposedPorts"] == {"53/udp": {}}
    assert (config["User"], config["OnBuild"]) == ("1000:1000", ["RUN true"])
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 90_000_000_000,
                                     "Retries": 3}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]', "HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize("change, message", [
    ("STOPSIGNAL SIGINT", "stopsignal is not a valid change command"), ("ENV", "ENV requires at least one argument"),
    ("ENV a", "ENV must have two arguments"), ("LABEL a", "LABEL must have two arguments"),
    ("EXPOSE", "EXPOSE requires at least one argument"), ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("USER", "USER requires exactly one argument"), ("HEALTHCHECK --interval=5x CMD true", 'invalid duration "5x"'),
])
def test_bad_change_instructions_in_dockerds_words(change, message):
    with pytest.raises(InvalidParameter, match=message):
        apply_changes({}, [change])


def test_an_entrypoint_keeps_a_cmd_set_before_it_only():
    assert apply_changes({"Cmd": ["old"]}, ["ENTRYPOINT top"])["Cmd"] is None
    assert apply_changes({"Cmd": ["old"]}, ["CMD new", "ENTRYPOINT top"])["Cmd"] == ["/bin/sh", "-c", "new"]


def test_merge_fills_what_the_changes_left_from_the_container():
    merged = merge({"Cmd": None}, {"Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "/w", "Volumes": {}})
    assert (merged["Cmd"], merged["WorkingDir"], merged["Volumes"]) == (["sh"], "/w", None)


@pytest.mark.parametrize("repo, tag, name", [
    ("mine", "", "docker.io/library/mine:latest"), ("mine", "v1", "docker.io/library/mine:v1"),
    ("127.0.0.1:5000/x/y", "t", "127.0.0.1:5000/x/y:t"), ("", "", None),
])
def test_commit_names(repo, tag, name):
    assert CommitService._name(repo, tag) == name


@pytest.mark.parametrize("repo, tag", [("", "v1"), ("mine@sha256:" + "0" * 64, ""), ("mine:a", "b"), ("Up", "")])
def test_bad_commit_names(repo, tag):
    with pytest.raises(InvalidParameter):
        CommitService._name(repo, tag)
