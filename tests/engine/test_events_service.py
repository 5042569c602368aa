"""The event bus without a daemon: messages in dockerd's shape (recorded
from dockerd 20.10), the ring that `since` reads, dockerd's filters, and a
stream's end at `until` or when its client goes."""
import json
import threading

import pytest

from engine.errors import InvalidParameter
from engine.filters import Filters
from engine.services import events as events_module
from engine.services.events import EventsService, include, parse_timestamp
from engine.store import Container

CID = "cfda444d1fd88a6523fb8a9c2c60248bc7425ab0a7aaedcdef85dbfc76981880"
IMAGE_ID = "sha256:e4da63c0f6805d2c60cde124673ecc4858a21256d2c519142ce2bee2f978bdfc"
# what dockerd 20.10 sent for `docker rename ev1 ev2` and `docker tag busybox mytag:1`
DOCKERD_RENAME = json.loads(
    '{"status":"rename","id":"%s","from":"busybox","Type":"container","Action":"rename","Actor":{"ID":"%s",'
    '"Attributes":{"a":"b","image":"busybox","name":"ev2","oldName":"/ev1"}},"scope":"local","time":1796533869,'
    '"timeNano":1796533869272319831}' % (CID, CID))
DOCKERD_TAG = json.loads(
    '{"status":"tag","id":"%s","Type":"image","Action":"tag","Actor":{"ID":"%s","Attributes":{"name":"mytag:1"}},'
    '"scope":"local","time":1796533869,"timeNano":1796533869296845985}' % (IMAGE_ID, IMAGE_ID))


class Clock:
    def __init__(self, now_ns=1796533869272319831):
        self.now_ns = now_ns

    def __call__(self):
        return self.now_ns


def record(name="/ev2", image="busybox", labels=None, container_id=CID):
    return Container(container_id, name, IMAGE_ID, {"Image": image, "Labels": labels}, {})


def cli_time(ns):
    """A time as the docker CLI sends it: seconds.nanoseconds."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


@pytest.fixture
def bus():
    return EventsService(Clock())


def test_messages_have_dockerds_shape_and_key_order(bus):
    bus.container(record(labels={"a": "b"}), "rename", {"oldName": "/ev1"})
    bus._clock_ns.now_ns = DOCKERD_TAG["timeNano"]
    bus.image("tag", IMAGE_ID, "mytag:1")
    past, subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    assert past == [DOCKERD_RENAME, DOCKERD_TAG]
    assert [list(e) for e in past] == [list(DOCKERD_RENAME), list(DOCKERD_TAG)]
    assert list(past[0]["Actor"]["Attributes"]) == ["a", "image", "name", "oldName"]  # Go sorts map keys


def test_container_labels_override_given_attributes_and_name_image_override_labels(bus):
    bus.container(record(labels={"exitCode": "x", "name": "label", "l": "1"}), "die", {"exitCode": "3"})
    (event,), subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    assert event["Actor"]["Attributes"] == {"exitCode": "x", "l": "1", "image": "busybox", "name": "ev2"}


def test_an_image_event_has_no_from_and_a_container_without_image_none(bus):
    bus.image("delete", IMAGE_ID, IMAGE_ID, labels={"org": "x"})
    bus.container(record(image=""), "create")
    (image_event, container_event), subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    assert "from" not in image_event and image_event["Actor"]["Attributes"] == {"org": "x", "name": IMAGE_ID}
    assert "from" not in container_event and container_event["status"] == "create"


def test_the_ring_keeps_the_last_256_and_since_until_select_from_it(bus):
    for n in range(300):
        bus._clock_ns.now_ns = n
        bus.container(record(), f"a{n}")
    past, subscription = bus.subscribe(0, None, Filters())
    subscription.close()
    assert [e["Action"] for e in past] == [f"a{n}" for n in range(44, 300)]
    past, subscription = bus.subscribe(100, 120, Filters())
    subscription.close()
    assert [e["timeNano"] for e in past] == list(range(100, 121))


def test_without_since_or_until_nothing_past_is_sent(bus):
    bus.container(record(), "create")
    past, subscription = bus.subscribe(None, None, Filters())
    subscription.close()
    assert past == []


@pytest.mark.parametrize("filters, shown", [
    ({"type": ["image"]}, ["tag"]),
    ({"event": ["die", "tag"]}, ["die", "tag"]),
    ({"container": ["ev2"]}, ["create", "die"]),
    ({"container": [CID[:5]]}, ["create", "die"]),  # a prefix of the ID
    ({"container": ["other"]}, ["create-other"]),
    ({"image": ["busybox"]}, ["create", "die", "tag"]),  # a container's image, an image's name without its tag
    ({"image": ["busybox:latest"]}, ["tag"]),  # containers made from "busybox" are not "busybox:latest"
    ({"image": [IMAGE_ID]}, ["tag"]),
    ({"label": ["a"]}, ["create", "die"]),
    ({"label": ["a=c"]}, []),
    ({"daemon": ["x"]}, []),
    ({"scope": ["swarm"]}, []),
    ({"type": ["container"], "event": ["die"], "label": ["a=b"]}, ["die"]),
])
def test_filters_as_dockerds(bus, filters, shown):
    bus.container(record(labels={"a": "b"}), "create")
    bus.container(record(name="/other", image="alpine", container_id="f" * 64), "create-other")
    bus.container(record(labels={"a": "b"}), "die", {"exitCode": "0"})
    bus.image("tag", IMAGE_ID, "busybox:latest")
    past, subscription = bus.subscribe(0, None, Filters.parse(json.dumps(filters)))
    subscription.close()
    assert [e["Action"] for e in past] == shown


def test_health_status_and_exec_events_match_by_prefix(bus):
    bus.container(record(), "health_status: healthy")
    bus.container(record(), "exec_start: sh -c true")
    bus.container(record(), "health_status")
    for wanted, shown in (("health_status", ["health_status: healthy", "health_status"]),
                          ("exec_start", ["exec_start: sh -c true"])):
        past = [e["Action"] for e in bus._recent if include(Filters({"event": {wanted}}), e)]
        assert past == shown


def test_timestamps_as_the_docker_cli_sends_them():
    assert parse_timestamp(None) is None and parse_timestamp("") is None
    assert parse_timestamp("1796533869") == 1796533869_000_000_000
    assert parse_timestamp("1796533869.5") == 1796533869_500_000_000
    assert parse_timestamp("1796533869.000000123") == 1796533869_000_000_123
    with pytest.raises(InvalidParameter, match='strconv.ParseInt: parsing "abc": invalid syntax'):
        parse_timestamp("abc")


def test_stream_arguments_are_checked_before_any_message(bus):
    gone = threading.Event()
    with pytest.raises(InvalidParameter, match=r"`since` time \(5\) cannot be after `until` time \(3\)"):
        bus.stream("5", "3", None, gone)
    with pytest.raises(InvalidParameter, match="invalid filter"):
        bus.stream(None, None, "xx", gone)
    assert bus.listeners == 0


def test_a_stream_with_until_past_sends_the_kept_messages_and_ends(bus):
    bus.container(record(), "create")
    bus._clock_ns.now_ns += 10
    bus.container(record(), "start")
    stream = bus.stream("0", cli_time(bus._clock_ns.now_ns), None, threading.Event())
    assert [e["Action"] for e in stream] == ["create", "start"]
    assert bus.listeners == 0


def test_a_stream_is_subscribed_before_it_is_read_and_closing_it_unsubscribes(bus):
    stream = bus.stream(None, None, None, threading.Event())
    bus.container(record(), "start")  # after the headers, before the first read: not missed
    assert next(stream)["Action"] == "start" and bus.listeners == 1
    bus.stream(None, None, None, threading.Event()).close()  # never read
    stream.close()
    assert bus.listeners == 0


def test_a_stream_follows_new_messages_that_pass_its_filters():
    bus = EventsService()
    bus.container(record(), "create")
    stream = bus.stream("0", None, json.dumps({"event": {"start": True}}), threading.Event())
    first = []
    reader = threading.Thread(target=lambda: first.extend([next(stream)]))
    reader.start()
    bus.container(record(), "die")
    bus.container(record(), "start")
    reader.join()
    assert first[0]["Action"] == "start"
    stream.close()
    assert bus.listeners == 0


def test_a_stream_ends_at_until_in_the_future(bus, monkeypatch):
    monkeypatch.setattr(events_module, "DISCONNECT_POLL", 0.01)
    clock = bus._clock_ns
    stream = bus.stream(None, cli_time(clock.now_ns + 5_000_000_000), None, threading.Event())
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    bus.container(record(), "start")
    clock.now_ns += 5_000_000_001
    reader.join()
    assert [e["Action"] for e in got] == ["start"] and bus.listeners == 0


def test_a_stream_ends_when_its_client_goes(bus, monkeypatch):
    monkeypatch.setattr(events_module, "DISCONNECT_POLL", 0.01)
    gone = threading.Event()
    stream = bus.stream(None, None, None, gone)
    reader = threading.Thread(target=lambda: list(stream))
    reader.start()
    gone.set()
    reader.join()
    assert bus.listeners == 0


def test_a_subscriber_that_falls_behind_misses_new_messages_not_old_ones(bus, monkeypatch):
    monkeypatch.setattr(events_module, "SUBSCRIBER_BUFFER", 3)
    _, subscription = bus.subscribe(None, None, Filters())
    for n in range(5):
        bus.container(record(), f"a{n}")
    assert [subscription.next(0)["Action"] for _ in range(3)] == ["a0", "a1", "a2"]
    assert subscription.next(0) is None
    subscription.close()
