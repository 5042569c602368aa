"""An engine restart: a new service over the same records and containerd
records the exits that happened while none was watching, removes --rm
containers that exited, and keeps running ones running."""
import signal

import pytest

from containers_helpers import busybox, containerd_py, engine  # noqa: F401 (fixtures)
from containers_helpers import TRAPPING, eventually, wait_for_output

pytestmark = pytest.mark.root


def test_exits_while_the_engine_is_away_are_recorded_at_its_restart(engine):
    service = engine.service
    exits = service.create({"Image": "busybox", "Cmd": TRAPPING}, {}, "exits")
    removed = service.create({"Image": "busybox", "Cmd": TRAPPING}, {"AutoRemove": True}, "removed")
    stays = service.create({"Image": "busybox", "Cmd": TRAPPING}, {}, "stays")
    for record in (exits, removed, stays):
        service.start(record.id)
        wait_for_output(engine, record, "ready")
    service.close()  # the engine is gone; containerd and the containers go on
    for record in (exits, removed):
        engine.client.tasks.kill(record.id, signal.SIGUSR1)
        eventually(lambda: engine.client.tasks.get(record.id).status == "stopped")

    service = engine.restart()
    assert service.store.get("exits").state.running  # as the disk said
    service.reconcile()
    restored = service.store.get("exits")
    assert (restored.state.status, restored.state.exit_code) == ("exited", 7)
    assert restored.state.finished_at != "0001-01-01T00:00:00Z"
    assert service.store.find_exact("removed") is None
    assert [c.id for c in engine.client.containers.list([])] and removed.id not in {
        c.id for c in engine.client.containers.list([])}
    running = service.store.get("stays")
    assert running.state.status == "running" and running.state.pid == stays.state.pid
    assert service.wait("exits") == {"StatusCode": 7, "Error": None}
    service.kill("stays", "USR1")  # the new service watches its exits
    assert service.wait("stays") == {"StatusCode": 7, "Error": None}
