"""Builds through the assembled engine (in the test's process, over
containerd-py and runpy-oci): RUN in a container, COPY-free metadata steps,
the cache across builds, the images' parents, intermediate images hidden
and removed with their child, a failing RUN, cancellation."""
import types
import uuid

import pytest

import cgroup_trees

from containerd_py.transfer import archive
from containerd_py.transfer.manifests import DEFAULT_PLATFORM
from containers_helpers import busybox, containerd_py  # noqa: F401 (fixtures)
from engine.assembly import Assembly
from engine.daemon import Config
from engine.errors import InvalidParameter
from engine.filters import Filters
from engine.services.containers import installed_runtimes

pytestmark = pytest.mark.root


@pytest.fixture
def assembly(containerd_py, busybox, tmp_path):  # noqa: F811
    namespace = f"engine-test-{uuid.uuid4().hex[:12]}"
    config = Config(containerd=containerd_py.address, containerd_namespace=namespace,
                    data_root=str(tmp_path / "data"), exec_root=str(tmp_path / "exec"), runtimes=installed_runtimes(),
                    bridge="none", iptables=False,  # in the test's process: no bridge, no rules in the host's netns
                    cgroup_parent=f"/{namespace}")
    assembled = Assembly(config, lambda: ("", ""))
    try:
        with open(busybox, "rb") as f:
            archive.import_archive(assembled.client.backend, namespace, f, DEFAULT_PLATFORM, "overlayfs")
        yield assembled
    finally:
        for record in assembled.store.all():
            assembled.containers.remove(record.id, force=True)
        for image in assembled.client.images.list([]):
            assembled.client.images.delete(image.name, sync=True)
        assembled.close()
        cgroup_trees.remove_in_every_hierarchy(f"/{namespace}")


def options(**given):
    defaults = dict(tags=(), target="", cache_from=(), cgroup_parent="", registry_config={}, build_args={}, labels={}, no_cache=False, pull=False, remove=True,
                    force_remove=False, network_mode="none", shm_size=0, extra_hosts=(), resources={})
    return types.SimpleNamespace(**{**defaults, **given})


def build(assembly, tmp_path, text, **given):
    context = types.SimpleNamespace(root=str(tmp_path), dockerfile_text=text, sums=None)
    return list(assembly.builds.build(options(**given), context))


def stream(messages):
    return "".join(m.get("stream", "") for m in messages)


def run_output(assembly, image):
    record = assembly.containers.create({"Image": image}, {"NetworkMode": "none"})
    assembly.containers.start(record.id)
    assert assembly.containers.wait(record.id)["StatusCode"] == 0
    with open(assembly.log_sink.output_log(record)) as f:
        text = "".join(__import__("json").loads(line)["log"] for line in f)
    assembly.containers.remove(record.id)
    return text


DOCKERFILE = "FROM busybox\nENV A=b\nRUN echo hi > /greeting && echo err >&2\nWORKDIR /w\nCMD cat /greeting\n"


def test_a_build_runs_caches_and_tags(assembly, tmp_path):
    messages = build(assembly, tmp_path, DOCKERFILE, tags=("built:1",))
    text = stream(messages)
    assert "errorDetail" not in str(messages), messages
    assert "Step 3/5 : RUN echo hi > /greeting && echo err >&2\n ---> Running in " in text
    assert "\x1b[91merr\n\x1b[0m" in text and text.endswith("Successfully tagged built:1\n")
    image = assembly.images.inspect("built:1")
    assert image["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /greeting"] and image["Config"]["WorkingDir"] == "/w"
    assert image["Parent"] and len(image["RootFS"]["Layers"]) == 3  # busybox, RUN, WORKDIR's directory
    assert run_output(assembly, "built:1") == "hi\n"
    assert not assembly.store.all()  # intermediate containers removed

    again = stream(build(assembly, tmp_path, DOCKERFILE, tags=("built:2",)))
    assert again.count(" ---> Using cache") == 4 and "Running in" not in again
    assert assembly.images.inspect("built:2")["Id"] == image["Id"]

    listed = assembly.images.list(Filters())
    assert {tuple(i["RepoTags"]) for i in listed} == {("busybox:latest",), ("built:1", "built:2")}
    assert len(assembly.images.list(Filters(), all=True)) == 5  # busybox and the four steps
    assembly.images.remove("built:1")
    records = assembly.images.remove("built:2")
    assert sum(1 for r in records if r.get("Deleted", "").startswith("sha256:") and len(r["Deleted"]) == 71) >= 4, records
    assert len(assembly.images.list(Filters(), all=True)) == 1


def test_a_failing_run_ends_the_stream_with_dockerds_error(assembly, tmp_path):
    messages = build(assembly, tmp_path, "FROM busybox\nRUN exit 7\n")
    assert messages[-1] == {"errorDetail": {"message": "The command '/bin/sh -c exit 7' returned a non-zero code: 7",
                                            "code": 7},
                            "error": "The command '/bin/sh -c exit 7' returned a non-zero code: 7"}
    assert len(assembly.store.all()) == 1  # dockerd keeps the failed step's container unless --force-rm
    messages = build(assembly, tmp_path, "FROM busybox\nRUN exit 7\n", force_remove=True)
    assert len(assembly.store.all()) == 1


def test_errors_before_the_first_step_raise(assembly, tmp_path):
    with pytest.raises(InvalidParameter, match="unknown instruction: RUNN"):
        build(assembly, tmp_path, "FROM busybox\nRUNN x\n")
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        build(assembly, tmp_path, "FROM busybox\n", target="nope")


def test_copy_from_the_context_and_from_a_stage(assembly, tmp_path):
    (tmp_path / "a.txt").write_text("from the context\n")
    text = ("FROM busybox AS files\nRUN mkdir /made && echo from a stage > /made/b.txt\n"
            "FROM busybox\nCOPY a.txt /a.txt\nCOPY --from=files /made/ /made/\nCMD cat /a.txt /made/b.txt\n")
    messages = build(assembly, tmp_path, text, tags=("copied",))
    assert "errorDetail" not in str(messages), messages
    assert run_output(assembly, "copied") == "from the context\nfrom a stage\n"
    history = [h["CreatedBy"] for h in assembly.images.history("copied")]
    assert history[2].startswith("/bin/sh -c #(nop) COPY file:") and history[2].endswith(" in /a.txt ")
    again = stream(build(assembly, tmp_path, text, tags=("copied",)))
    assert again.count("Using cache") == 4
    (tmp_path / "a.txt").write_text("changed\n")
    changed = stream(build(assembly, tmp_path, text, tags=("copied",)))
    assert changed.count("Using cache") == 1  # the first stage's RUN; COPY a.txt misses, and so all after it
    assert run_output(assembly, "copied") == "changed\nfrom a stage\n"


def test_from_scratch_and_a_workdir_that_is_there(assembly, tmp_path):
    (tmp_path / "a.txt").write_text("alone\n")
    messages = build(assembly, tmp_path, "FROM scratch\nCOPY a.txt /\nWORKDIR /\nCMD [\"/a.txt\"]\n", tags=("bare",))
    assert "errorDetail" not in str(messages), messages
    image = assembly.images.inspect("bare")
    assert len(image["RootFS"]["Layers"]) == 1 and image["Config"]["Cmd"] == ["/a.txt"]
    assert [h.get("empty_layer", False) for h in assembly.images.get("bare").config["history"]] == [False, True, True]


def test_cache_from_an_image_without_parents(assembly, tmp_path):
    """As after a pull: the image's history, not a local chain, gives the cache (dockerd's --cache-from)."""
    import io
    from engine.services.image_archive import ImageArchives
    (tmp_path / "a.txt").write_text("cached\n")
    text = "FROM busybox\nRUN echo made > /made\nCOPY a.txt /a.txt\nCMD cat /made /a.txt\n"
    build(assembly, tmp_path, text, tags=("src",))
    source_id = assembly.images.get("src").id
    archives = ImageArchives(assembly.images)
    saved = io.BytesIO(b"".join(archives.save(["src"])))
    assembly.images.remove("src")
    list(archives.load(saved.read))
    assert assembly.images.inspect("src")["Parent"] == ""

    plain = stream(build(assembly, tmp_path, text, tags=("plain",)))
    assert "Using cache" not in plain
    messages = build(assembly, tmp_path, text, tags=("again",), cache_from=("src", "missing:1"))
    assert stream(messages).count("Using cache") == 3, stream(messages)
    assert assembly.images.get("again").id == source_id
    assert run_output(assembly, "again") == "made\ncached\n"


def test_a_client_gone_during_a_silent_run_cancels_it(assembly, tmp_path):
    """The RUN is killed and its container removed, though it prints nothing to notice the client by."""
    import threading
    disconnected = threading.Event()
    context = types.SimpleNamespace(root=str(tmp_path), dockerfile_text="FROM busybox\nRUN sleep 600\n", sums=None)
    messages = []
    for message in assembly.builds.build(options(), context, disconnected):
        messages.append(message)
        if "Running in" in message.get("stream", ""):
            disconnected.set()
    assert messages[-1]["error"] == "Build cancelled", messages[-1]
    assert not assembly.store.all()


def test_a_run_under_a_volume_keeps_only_its_mount_point(assembly, tmp_path):
    """dockerd's anonymous volume of a RUN: the image's files readable there, writes not committed."""
    text = ("FROM busybox\nRUN mkdir /data && echo before > /data/kept\nVOLUME /data /fresh\n"
            "RUN cat /data/kept > /seen && echo lost > /data/lost && echo lost > /fresh/lost\n"
            'CMD ["sh", "-c", "cat /seen; ls -A /data /fresh"]\n')
    messages = build(assembly, tmp_path, text, tags=("volumed",))
    assert "errorDetail" not in str(messages), messages
    assert assembly.volumes.list()["Volumes"] == []  # the RUN containers' went with them
    assert run_output(assembly, "volumed") == "before\n/data:\nkept\n\n/fresh:\n"
    assert not assembly.store.all()
