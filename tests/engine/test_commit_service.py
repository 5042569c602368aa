"""docker commit at the service level over a private containerd-py: the
container's changes become a layer through containerd's diff service, and a
container runs from the new image."""
import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from containers_helpers import output, wait_for_output
from engine.containerd.images import ContainerdImages
from engine.containerd.layers import ContainerdLayers
from engine.errors import InvalidParameter, System
from engine.services.commit import CommitService, merge
from engine.services.image_writer import EMPTY_LAYER_DIFF_ID
from engine.services.image_changes import apply_changes
from engine.services.container_fs import ContainerFiles
from engine.services.images import Catalog

pytestmark = pytest.mark.root


@pytest.fixture
def committer(engine):
    return CommitService(engine.service, ContainerdLayers(engine.client, str(engine.data_root / "tmp")),
                         ContainerdImages(engine.client))


def _run(engine, image, cmd):
    record = engine.service.create({"Image": image, "Cmd": cmd}, {})
    engine.service.start(record.id)
    engine.service.wait(record.id)
    return record


def test_a_committed_container_runs_with_its_changes_and_the_new_config(engine, committer):
    base = _run(engine, "busybox", ["sh", "-c", "echo committed > /greeting; rm /bin/ls"])
    image_id = committer.commit(base.id, "mine", "v1", comment="a greeting", author="me",
                                changes=["CMD cat /greeting", "ENV GREETING=yes", "WORKDIR /tmp"])
    view = Catalog(committer.images).find("mine:v1")
    assert view.id == image_id and view.names == ["docker.io/library/mine:v1"]
    config = view.config
    assert config["config"]["Cmd"] == ["/bin/sh", "-c", "cat /greeting"]
    assert "GREETING=yes" in config["config"]["Env"] and config["config"]["WorkingDir"] == "/tmp"
    assert config["author"] == "me" and config["history"][-1]["comment"] == "a greeting"
    assert len(config["rootfs"]["diff_ids"]) == 2 and config["rootfs"]["diff_ids"][1] != EMPTY_LAYER_DIFF_ID
    child = engine.service.create({"Image": "mine:v1"}, {})
    engine.service.start(child.id)
    assert engine.service.wait(child.id)["StatusCode"] == 0
    assert output(engine, child) == "committed\n"
    grandchild = _run(engine, "mine:v1", ["sh", "-c", "echo more > /more"])
    files = ContainerFiles(engine.service.store, committer.layers)
    assert files.changes(grandchild.id) == [{"Path": "/more", "Kind": 1}]  # against both layers below it
    gone = engine.service.create({"Image": "mine:v1", "Cmd": ["ls"]}, {})
    with pytest.raises(System, match='"ls": executable file not found'):  # its whiteout hides it
        engine.service.start(gone.id)


def test_a_running_container_is_paused_for_the_commit_and_runs_on(engine, committer):
    record = engine.service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo x > /x; echo ready; "
                                                                "while :; do sleep 0.1; done"]}, {})
    engine.service.start(record.id)
    wait_for_output(engine, record, "ready")
    image_id = committer.commit(record.id)
    assert record.state.status == "running"
    view = Catalog(committer.images).by_id[image_id]
    assert view.refs == [] and view.names[0].startswith("moby-dangling@sha256:")
    assert view.config["config"]["Cmd"] == record.config["Cmd"]


def test_a_container_without_changes_adds_an_empty_layer_to_the_history_only(engine, committer):
    record = engine.service.create({"Image": "busybox"}, {})  # never started: the runtime made no mount points
    image_id = committer.commit(record.id, "same")
    config = Catalog(committer.images).by_id[image_id].config
    assert len(config["rootfs"]["diff_ids"]) == 1 and config["history"][-1]["empty_layer"] is True


def test_bad_change_instructions_and_names_are_refused():
    with pytest.raises(InvalidParameter, match="^from is not a valid change command$"):
        apply_changes({}, ["FROM busybox"])
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        CommitService._name("UPPER", "")


def test_changes_are_merged_over_the_containers_config_as_dockerd_merges_them():
    container = {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "User": "nobody", "Labels": {"a": "1"},
                 "ExposedPorts": {"80/tcp": {}}}
    user = apply_changes({}, ["ENV A=2", "EXPOSE 90", "LABEL b=2", 'ENTRYPOINT ["/bin/echo"]'])
    merged = merge(user, container)
    assert merged["Env"] == ["A=2", "PATH=/bin"]
    assert merged["ExposedPorts"] == {"80/tcp": {}, "90/tcp": {}}
    assert merged["Labels"] == {"a": "1", "b": "2"} and merged["User"] == "nobody"
    assert (merged["Entrypoint"], merged["Cmd"]) == (["/bin/echo"], None)
