"""The dispatcher over a fake backend: the stream a user reads, the configs
and history each instruction leaves, the cache probe, as dockerd's legacy
builder (probed on dockerd 20.10; the differential tests compare the rest)."""
import contextlib
import threading

import pytest

from engine.builder.backend import BaseImage, StepFailed
from engine.builder.cache import same_step
from engine.builder.dispatch import Build, BuildSettings
from engine.builder.dockerfile import parse
from engine.errors import InvalidParameter

BUSYBOX = BaseImage("sha256:" + "b" * 64, {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                                   "/usr/bin:/sbin:/bin"]})


class FakeBackend:
    """Images as (parent, config, container_config) in a dict; RUN exits with what `exit N` says."""

    def __init__(self):
        self.images = {BUSYBOX.id: (None, BUSYBOX.config, {})}
        self.containers, self.removed = {}, []

    def base_image(self, ref, pull, emit, registry_config):
        if ref != "busybox":
            raise InvalidParameter(f"No such image: {ref}")
        return BUSYBOX

    def cached(self, parent, container_config, sources=()):
        return next((image_id for image_id, (p, _, cc) in self.images.items()
                     if p == parent and same_step(cc, container_config)), None)

    def _new(self, commit):
        image_id = "sha256:%064x" % (len(self.images) + 1)
        self.images[image_id] = (commit.parent, commit.config, commit.container_config)
        return image_id

    def commit_config(self, commit):
        return self._new(commit)

    def add_layer(self, commit, fill):
        return self._new(commit)

    def create_container(self, run_config, host_config):
        container_id = "c%063d" % (len(self.containers) + 1)
        self.containers[container_id] = run_config
        return container_id

    def run(self, container_id, output, cancelled):
        script = self.containers[container_id]["Cmd"][-1]
        output("stdout", "out\n")
        output("stderr", "err\n")
        return int(script.split()[-1]) if script.startswith("exit") else 0

    def commit_container(self, commit):
        return self._new(commit)

    def remove_container(self, container_id):
        self.removed.append(container_id)

    @contextlib.contextmanager
    def mounted_image(self, image_id):
        yield "/nonexistent"


def build(text, backend=None, **settings):
    backend = backend or FakeBackend()
    messages = []
    image_id = Build(parse(text), "/nonexistent", backend, BuildSettings(**settings), messages.append,
                     threading.Event()).run()
    return backend, image_id, messages


def streamed(messages):
    return "".join(m.get("stream", "") for m in messages)


def test_metadata_steps_stream_and_configs_as_dockerd():
    backend, image_id, messages = build("FROM busybox\nENV A=b\nLABEL x=y\nCMD [\"cat\", \"/a.txt\"]\n")
    text = streamed(messages)
    lines = [line for line in text.splitlines() if "Running in" not in line and "Removing" not in line]
    assert lines[0] == "Step 1/4 : FROM busybox" and lines[1] == " ---> bbbbbbbbbbbb"
    assert lines[2] == "Step 2/4 : ENV A=b"
    assert text.count("Running in") == 3 and text.count("Removing intermediate container") == 3
    parent, config, container_config = backend.images[image_id]
    assert config["Cmd"] == ["cat", "/a.txt"] and config["Labels"] == {"x": "y"}
    assert config["Env"][-1] == "A=b"
    assert container_config["Cmd"] == ["/bin/sh", "-c", "#(nop) ", 'CMD ["cat" "/a.txt"]']
    assert messages[-1] == {"aux": {"ID": image_id}} or {"aux": {"ID": image_id}} in messages


def test_second_build_hits_the_cache_and_the_first_miss_busts_it():
    backend, first, _ = build("FROM busybox\nENV A=b\nRUN exit 0\nLABEL x=y\n")
    _, second, messages = build("FROM busybox\nENV A=b\nRUN exit 0\nLABEL x=y\n", backend)
    assert second == first and streamed(messages).count("Using cache") == 3
    _, third, messages = build("FROM busybox\nENV A=c\nRUN exit 0\nLABEL x=y\n", backend)
    assert third != first and "Using cache" not in streamed(messages)
    _, _, messages = build("FROM busybox\nENV A=b\nRUN exit 0\nLABEL x=y\n", backend, no_cache=True)
    assert "Using cache" not in streamed(messages)


def test_run_streams_stderr_in_red_and_a_failure_names_the_command():
    backend = FakeBackend()
    with pytest.raises(StepFailed) as failed:
        build("FROM busybox\nRUN exit 7\n", backend)
    assert str(failed.value) == "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    assert failed.value.code == 7 and backend.removed == []  # dockerd keeps a failed step's container
    with pytest.raises(StepFailed):
        build("FROM busybox\nRUN exit 7\n", backend, force_remove=True)
    assert len(backend.removed) == 1
    _, _, messages = build("FROM busybox\nRUN exit 0\n")
    assert "out\n\x1b[91merr\n\x1b[0m" in streamed(messages)


def test_run_cache_key_names_declared_build_args():
    backend, image_id, _ = build("FROM busybox\nARG V\nRUN exit 0\n", build_args={"V": "1", "HTTP_PROXY": "p"})
    _, _, container_config = backend.images[image_id]
    assert container_config["Cmd"] == ["|1", "V=1", "/bin/sh", "-c", "exit 0"]
    run_config = next(iter(backend.containers.values()))
    assert "V=1" in run_config["Env"] and "HTTP_PROXY=p" in run_config["Env"]


def test_healthcheck_history_as_go_formats_it():
    backend, image_id, _ = build("FROM busybox\nHEALTHCHECK --interval=5s --retries=3 CMD true\n")
    _, config, container_config = backend.images[image_id]
    assert container_config["Cmd"][-1] == 'HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x03\'}'
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 3}


def test_stages_by_name_onbuild_and_unused_args():
    backend, first, _ = build("FROM busybox\nONBUILD ENV T=1\n")
    backend.base_image = lambda ref, pull, emit, registry_config: BaseImage(first, dict(backend.images[first][1]))
    _, image_id, messages = build("FROM busybox AS base\nENV S=1\nFROM base\nLABEL l=1\n", backend,
                                  build_args={"unused": "x"})
    text = streamed(messages)
    assert "# Executing 1 build trigger\n" in text
    assert "[Warning] One or more build-args [unused] were not consumed\n" in text
    _, config, _ = backend.images[image_id]
    assert "S=1" in config["Env"] and "T=1" in config["Env"] and not config.get("OnBuild")
    assert sum(1 for m in messages if "aux" in m) == 2


def test_stages_run_at_once_but_stream_in_order():
    """The second stage's RUN may run first; its lines still come after the first stage's."""
    second_ran = threading.Event()

    class Racing(FakeBackend):
        def run(self, container_id, output, cancelled):
            if "one" in self.containers[container_id]["Cmd"][-1]:
                assert second_ran.wait(10), "the stages ran one after the other"
            else:
                second_ran.set()
            return super().run(container_id, output, cancelled)

    _, _, messages = build("FROM busybox AS one\nRUN echo one\nFROM busybox\nRUN echo two\n", Racing())
    steps = [m["stream"] for m in messages if m.get("stream", "").startswith("Step")]
    assert steps == ["Step 1/4 : FROM busybox AS one", "Step 2/4 : RUN echo one", "Step 3/4 : FROM busybox",
                     "Step 4/4 : RUN echo two"]


def test_a_failed_stage_is_the_error_even_when_a_later_one_fails_too():
    backend = FakeBackend()
    with pytest.raises(StepFailed, match="returned a non-zero code: 3"):
        build("FROM busybox\nRUN exit 3\nFROM busybox\nRUN exit 4\n", backend)
    with pytest.raises(StepFailed, match="returned a non-zero code: 4"):
        build("FROM busybox AS a\nRUN exit 0\nFROM a\nRUN exit 4\n", backend)
