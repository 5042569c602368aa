"""A pull's progress in dockerd's messages, from the transfer code's updates (no daemon)."""
import pytest

from containerd_py.transfer import progress as p
from containerd_py.types import Descriptor
from engine.services.pull_progress import PullProgress, human_size, progress_text

CONFIG = Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "c" * 64, 100)
SMALL = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "1" * 64, 1000)
BIG = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "2" * 64, 100_000_000)


def run(updates, **kw):
    out = []
    progress = PullProgress(out.append, **kw)
    for kind, desc, status, *current in updates:
        progress.update(kind, desc, status, *current)
    return [(m["status"], m["id"], m.get("progressDetail", {}).get("current")) for m in out]


WAITING = [("config", CONFIG, p.WAITING), ("layer", SMALL, p.WAITING), ("layer", BIG, p.WAITING)]


def test_layers_are_announced_in_manifest_order_then_downloaded_and_extracted():
    assert run(WAITING + [
        ("config", CONFIG, p.DOWNLOADED, 100), ("layer", BIG, p.DOWNLOADING, 100),
        ("layer", SMALL, p.DOWNLOADING, 1000), ("layer", SMALL, p.DOWNLOADED, 1000),
        ("layer", BIG, p.DOWNLOADING, 2_000_000), ("layer", BIG, p.DOWNLOADING, 100_000_000),
        ("layer", BIG, p.DOWNLOADED, 100_000_000),
        ("layer", SMALL, p.EXTRACTING), ("layer", SMALL, p.UNPACKED, 1000),
        ("layer", BIG, p.EXTRACTING), ("layer", BIG, p.UNPACKED, 100_000_000)]) == [
        ("Pulling fs layer", "111111111111", None), ("Pulling fs layer", "222222222222", None),
        ("Downloading", "111111111111", 1000), ("Verifying Checksum", "111111111111", None),
        ("Download complete", "111111111111", None),
        ("Downloading", "222222222222", 2_000_000),  # 100 bytes is no step; 1 % of 100 MB is
        ("Downloading", "222222222222", 100_000_000), ("Verifying Checksum", "222222222222", None),
        ("Download complete", "222222222222", None),
        ("Extracting", "111111111111", 0), ("Extracting", "111111111111", 1000),
        ("Pull complete", "111111111111", None),
        ("Extracting", "222222222222", 0), ("Extracting", "222222222222", 100_000_000),
        ("Pull complete", "222222222222", None)]


def test_a_layer_here_already_exists_once_and_a_config_here_silences_every_layer():
    assert run(WAITING + [("layer", SMALL, p.EXISTS, 1000), ("layer", SMALL, p.EXISTS, 1000)],
               local_layers=frozenset({SMALL.digest})) == [
        ("Already exists", "111111111111", None), ("Pulling fs layer", "222222222222", None)]
    assert run(WAITING + [("layer", SMALL, p.EXISTS, 1000), ("layer", BIG, p.DOWNLOADING, 100_000_000)],
               local_configs=frozenset({CONFIG.digest})) == []


@pytest.mark.parametrize("current,total,text", [
    (36445, 1500678, "[=>                                                 ]  36.45kB/1.501MB"),  # dockerd's own
    (127, 127, "[==================================================>]     127B/127B"),
    (0, 127, "[>                                                  ]       0B/127B"),
    (5, 0, "      5B"), (0, 0, "")])
def test_progress_text_is_dockerds(current, total, text):
    assert progress_text(current, total) == text


def test_human_size_has_four_significant_digits():
    assert [human_size(n) for n in (999, 1000, 1234567, 2_000_000_000)] == ["999B", "1kB", "1.235MB", "2GB"]
