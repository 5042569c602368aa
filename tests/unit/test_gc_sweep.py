"""The collector's snapshot sweep when an owner removes a doomed snapshot
first (an engine's `docker rm` racing a collection): no failure, not counted."""
from types import SimpleNamespace

from containerd_py import errors
from containerd_py.gc.collector import Collector, Stats


class Snapshotter:
    def __init__(self, gone):
        self.gone, self.removed = set(gone), []

    def remove(self, ns, key):
        if key in self.gone:
            raise errors.NotFound(f"snapshot {key} does not exist")
        self.removed.append(key)


def test_a_snapshot_removed_meanwhile_is_skipped_and_the_sweep_goes_on():
    snapshotter = Snapshotter(gone={"child"})
    collector = Collector(None, None, None, None, None, {"overlayfs": snapshotter}, None)
    doomed = {("overlayfs", "child"): SimpleNamespace(parent="base"), ("overlayfs", "base"): SimpleNamespace(parent=""),
              ("overlayfs", "other"): SimpleNamespace(parent="")}
    stats = Stats()
    collector._sweep_snapshots("ns", doomed, stats)
    assert sorted(snapshotter.removed) == ["base", "other"]
    assert stats.snapshots == 2 and doomed == {}
