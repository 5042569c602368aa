"""The fast parser accepts runc's spellings (Go flag style)."""
import pytest

from runpy_oci.cli.table import NeedsHelp, UsageError, parse


def test_globals_and_verb_flags():
    cmd = parse(["--root", "/r", "--log=/l", "--log-format", "json", "create", "-b", "/b", "--pid-file=/p", "c1"])
    assert cmd.verb.name == "create"
    assert cmd.globals["root"] == "/r" and cmd.globals["log"] == "/l" and cmd.globals["log_format"] == "json"
    assert cmd.options["bundle"] == "/b" and cmd.options["pid_file"] == "/p"
    assert cmd.args == ["c1"]


def test_single_dash_long_flags_and_bools():
    cmd = parse(["-root", "/r", "run", "-bundle", "/b", "-d", "c1"])
    assert cmd.globals["root"] == "/r" and cmd.options["detach"] is True and cmd.options["bundle"] == "/b"
    assert parse(["run", "--detach=false", "c"]).options["detach"] is False


def test_defaults():
    cmd = parse(["state", "x"])
    assert cmd.globals["root"] == "/run/runpy-oci" and cmd.globals["log_format"] == "text"
    assert parse(["kill", "x"]).options["all"] is False
    assert parse(["create", "x"]).options["preserve_fds"] == 0


def test_optional_positional():
    assert parse(["kill", "x", "KILL"]).args == ["x", "KILL"]


@pytest.mark.parametrize("argv,message", [
    (["state"], '"state" requires exactly 1 argument(s)'),
    (["state", "a", "b"], '"state" requires exactly 1 argument(s)'),
    (["create", "--bogus", "x"], "flag provided but not defined: --bogus"),
    (["create", "--bundle"], "flag needs an argument"),
    (["create", "--preserve-fds", "many", "x"], "invalid value 'many'"),
])
def test_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(argv)


@pytest.mark.parametrize("argv", [[], ["help"], ["--help"], ["bogus"], ["create", "--help"], ["-h"]])
def test_help_goes_to_click(argv):
    with pytest.raises(NeedsHelp):
        parse(argv)


def test_click_help_lists_every_verb(capsys):
    from runpy_oci.cli.human import run_click
    from runpy_oci.cli.table import VERBS

    assert run_click(["--help"]) == 0
    out = capsys.readouterr().out
    for name in VERBS:
        assert name in out


def test_fast_path_does_not_import_click():
    import subprocess
    import sys

    code = ("import sys; from runpy_oci.cli.table import parse; from runpy_oci.cli import main; "
            "parse(['state', 'x']); import runpy_oci.cli.verbs.state, runpy_oci.cli.verbs.create, "
            "runpy_oci.cli.verbs.run, runpy_oci.cli.verbs.start, runpy_oci.cli.verbs.delete, runpy_oci.cli.verbs.kill; "
            "print(sorted(m for m in ('click', 'json', 're', 'socket', 'dataclasses', 'typing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_flag():
    from runpy_oci.cli.table import ShowVersion

    for argv in (["--version"], ["-v"], ["--root", "/r", "-v"]):
        with pytest.raises(ShowVersion):
            parse(argv)


def _help(capsys, argv):
    from runpy_oci.cli.human import run_click

    assert run_click(argv) == 0
    return capsys.readouterr().out


def test_help_speaks_runcs_words_not_spec_paths_or_type_names(capsys):
    from runpy_oci.cli.table import VERBS

    texts = [_help(capsys, ["--help"])] + [_help(capsys, [name, "--help"]) for name in VERBS]
    for text in texts:
        for word in ("TEXT", "INTEGER", "linux.resources"):
            assert word not in text, text
    update = _help(capsys, ["update", "--help"])
    assert "--memory value" in update
    assert "Memory limit (in bytes)" in update
    assert "--preserve-fds value" in _help(capsys, ["create", "--help"])


@pytest.mark.parametrize("front", ["fast", "click"])
def test_version_has_runcs_shape(capsys, front):
    from runpy_oci.cli import main
    from runpy_oci.cli.human import run_click

    assert (main(["--version"]) if front == "fast" else run_click(["--version"])) == 0
    first, *rest = capsys.readouterr().out.splitlines()
    assert first.startswith("runpy-oci version ")
    keys = [line.split(": ", 1)[0] for line in rest]
    assert keys[:2] == ["commit", "spec"] and all(key.isidentifier() for key in keys)
    assert "-v, --version" in _help(capsys, ["--help"])
