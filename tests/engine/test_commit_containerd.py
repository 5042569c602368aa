"""diff, cp and commit over real containerd (Debian's) with runc: the
services speak containerd's API (its diff service included), not only ours."""
import io
import tarfile

import pytest

from containers_helpers import busybox, output, real_containerd  # noqa: F401 (fixtures)
from engine.containerd.images import ContainerdImages
from engine.containerd.layers import ContainerdLayers
from engine.services.commit import CommitService
from engine.services.container_fs import ContainerFiles
from test_containers_containerd import engine  # noqa: F401 (the service over real containerd)

pytestmark = pytest.mark.root
RUNC = {"Runtime": "runc"}


def test_diff_cp_and_commit_over_containerd(engine):
    service = engine.service
    layers = ContainerdLayers(engine.client, str(engine.data_root / "tmp"))
    files = ContainerFiles(service.store, layers)
    record = service.create({"Image": "busybox", "Cmd": ["sh", "-c", "echo over containerd > /greeting"]}, RUNC)
    service.start(record.id)
    assert service.wait(record.id)["StatusCode"] == 0
    assert files.changes(record.id) == [{"Path": "/greeting", "Kind": 1}]
    _, chunks = files.archive(record.id, "/greeting")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        assert tf.extractfile("greeting").read() == b"over containerd\n"

    image_id = CommitService(service, layers, ContainerdImages(engine.client)).commit(
        record.id, "over", changes=["CMD cat /greeting"])
    child = service.create({"Image": "over"}, RUNC)
    assert child.image == image_id
    service.start(child.id)
    assert service.wait(child.id)["StatusCode"] == 0
    assert output(engine, child) == "over containerd\n"
