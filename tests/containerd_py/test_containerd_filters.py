"""containerd's filter syntax."""
import pytest

from containerd_py import errors
from containerd_py.filters import Filter, adaptor

IMAGE = adaptor({"name": "docker.io/library/busybox:latest", "target.mediatype": "application/x"},
                {"a.b": "c", "gc": "1", "empty": ""})


@pytest.mark.parametrize("filters, expected", [
    ([], True),
    (["name==docker.io/library/busybox:latest"], True),
    (["name==other"], False),
    (['labels."a.b"==c'], True),
    (["labels.a.b==c"], True),
    (["labels.a.b==c,name~=/busy/"], True),
    (["labels.a.b==c,name~=^foo"], False),
    (["name==other", "labels.gc"], True),
    (["labels.missing"], False),
    (["labels.gc"], True),
    (["name!=x"], True),
    (["target.mediatype~=application/.*"], True),
    (['name=="docker.io/library/busybox:latest"'], True),
    (["  name==docker.io/library/busybox:latest , labels.gc "], True),
])
def test_matching(filters, expected):
    assert Filter(filters).match(IMAGE) is expected


@pytest.mark.parametrize("bad", ["==x", "name==", "name~=[", "name==x,,", "name==x y"])
def test_malformed_filters_are_invalid_arguments(bad):
    with pytest.raises(errors.InvalidArgument, match="filters"):
        Filter([bad])
