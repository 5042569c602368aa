"""Image prune at the service level, over containerd-py and real containerd:
which images each filter takes (dangling by default, all, until, label,
label!), that an image a container uses stays, and dockerd's reply."""
import io
import json

import pytest

from test_images_service import busybox_tar, containerd, daemon, images, registry  # noqa: F401  (fixtures)
from imagebuild import file_, layer_tar  # noqa: E402  (on the path once test_images_service is imported)

from engine.errors import InvalidParameter
from engine.services.image_archive import ImageArchives
from engine.services.image_prune import prune_images

pytestmark = pytest.mark.root


def imported(images, name: str = "", labels: dict | None = None) -> str:
    """A one-layer image of 3 bytes (its own bytes, so its own layer); its ID."""
    changes = [f"LABEL {k}={v}" for k, v in (labels or {}).items()]
    rootfs = layer_tar([file_(f"f-{name or len(images.list())}", b"abc")])
    repo, _, tag = name.partition(":")
    (done,) = ImageArchives(images).import_image(io.BytesIO(rootfs).read, repo=repo, tag=tag, changes=changes)
    return done["status"]


def test_dangling_images_go_by_default(images):  # noqa: F811
    dangling = imported(images)
    tagged = imported(images, "kept:1")
    report = prune_images(images, None)
    assert report["ImagesDeleted"][0] == {"Deleted": dangling} and report["SpaceReclaimed"] == 3
    assert [s["Id"] for s in images.list()] == [tagged]
    assert prune_images(images, None) == {"ImagesDeleted": None, "SpaceReclaimed": 0}


def test_all_takes_tagged_images_but_not_one_a_container_uses(images):  # noqa: F811
    used, unused = imported(images, "used:1"), imported(images, "unused:1")
    images.in_use = lambda image_id: [("c" * 64, False)] if image_id == used else []
    report = prune_images(images, json.dumps({"dangling": ["false"]}))
    assert report["ImagesDeleted"][:2] == [{"Untagged": "unused:1"}, {"Deleted": unused}]
    assert [s["Id"] for s in images.list()] == [used]


def test_label_and_until_filters(images):  # noqa: F811
    a = imported(images, "a:1", {"keep": "yes"})
    b = imported(images, "b:1", {"keep": "no"})
    everything = {"dangling": ["false"]}
    assert prune_images(images, json.dumps({**everything, "label": ["keep=yes"]}))["ImagesDeleted"][1] == \
        {"Deleted": a}
    assert prune_images(images, json.dumps({**everything, "until": ["2000-01-01T00:00:00Z"]}))["ImagesDeleted"] \
        is None  # b was made after
    assert prune_images(images, json.dumps({**everything, "label!": ["keep=no"]}))["ImagesDeleted"] is None
    assert prune_images(images, json.dumps({**everything, "label!": ["keep=yes"]}))["ImagesDeleted"][1] == \
        {"Deleted": b}


@pytest.mark.parametrize("filters,message", [({"dangling": ["maybe"]}, "Invalid filter 'dangling=[maybe]'"),
                                             ({"reference": ["x"]}, "Invalid filter 'reference'")])
def test_bad_filters_in_dockerds_words(images, filters, message):  # noqa: F811
    with pytest.raises(InvalidParameter, match=f"^{message}$".replace("[", r"\[").replace("]", r"\]")):
        prune_images(images, json.dumps(filters))
