"""The container inherits the runtime's stdio (process.terminal false)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def test_run_stdout_and_stderr_reach_caller(runtime, bundle):
    bundle.set_script("echo to-stdout; echo to-stderr >&2; echo more-stdout")
    cp = runtime.check(runtime.run(runtime.new_id("stdio"), bundle.path), "run")
    assert cp.stdout == "to-stdout\nmore-stdout\n"
    assert "to-stderr" in cp.stderr.splitlines()
    assert "to-stdout" not in cp.stderr


def test_run_stdin_passthrough(runtime, bundle):
    bundle.set_args("cat")
    cp = runtime.check(runtime.run(runtime.new_id("stdin"), bundle.path, input="hi\n"), "run cat")
    assert cp.stdout == "hi\n"


def test_run_stdin_large_and_binary(runtime, bundle):
    data = bytes(range(256)) * 800  # 200 KiB, every byte value
    bundle.set_script("cat | md5sum")
    cp = runtime.check(runtime.run(runtime.new_id("stdinbig"), bundle.path, input=data), "run")
    import hashlib
    assert cp.stdout.split()[0] == hashlib.md5(data).hexdigest()


def test_run_stdin_eof(runtime, bundle):
    # with no input the program sees EOF at once (stdin is /dev/null here)
    bundle.set_script("if read line; then echo got-line; else echo eof; fi")
    cp = runtime.check(runtime.run(runtime.new_id("eof"), bundle.path), "run")
    assert cp.stdout == "eof\n"


def test_create_start_output_goes_to_create_stdio(runtime, bundle):
    bundle.set_script("echo out-after-start; echo err-after-start >&2")
    cid = runtime.new_id("createio")
    created = runtime.check(runtime.create(cid, bundle.path), "create")
    assert "out-after-start" not in created.out_path.read_text()
    runtime.check(runtime.start(cid), "start")
    runtime.wait_status(cid, "stopped")
    assert created.out_path.read_text() == "out-after-start\n"
    assert "err-after-start" in created.err_path.read_text()
