"""docker-py 7's events, info and df at engine-py: a followed event stream
decoded as it comes, and the fields its helpers read."""
import datetime
import time

import pytest

from test_containers_api import unique


@pytest.fixture
def client(dockerpy):
    return dockerpy


def test_events_follow_and_end_at_until(client):
    name = unique("dp")
    since = datetime.datetime.now(datetime.timezone.utc)
    stream = client.events(decode=True, filters={"container": name, "event": ["start", "die"]})
    try:
        client.containers.run("busybox", ["true"], detach=True, name=name)
        assert [next(stream)["Action"], next(stream)["Action"]] == ["start", "die"]
    finally:
        stream.close()
        client.containers.get(name).remove(force=True)
    # docker-py sends whole seconds: an `until` a second or two ahead covers the rm just done, and the stream ends then
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    past = client.events(decode=True, since=since, until=until, filters={"container": name})
    assert [e["Action"] for e in past] == ["create", "start", "die", "destroy"]


def test_info_and_df_as_docker_py_reads_them(client):
    info = client.info()
    assert info["OSType"] == "linux" and info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["Images"] >= 1 and isinstance(info["Warnings"], list)
    usage = client.df()
    assert {"busybox:latest"} <= {tag for image in usage["Images"] for tag in image["RepoTags"] or ()}
    assert usage["Volumes"] == [] and usage["LayersSize"] > 0
    assert time.time() - 60 < datetime.datetime.fromisoformat(info["SystemTime"][:26]).replace(
        tzinfo=datetime.timezone.utc).timestamp() < time.time() + 60
