"""`GET /events` through the API server: a chunked JSON stream whose headers
come at once, the kept messages for since/until, new ones as they happen, the
end at `until`, and dockerd's errors for bad arguments."""
import json
from urllib.parse import quote

import h11
import pytest

from engine.api.routes import system as system_routes
from engine.api.server import Router, Server
from engine.services.events import EventsService
from test_api_server import Client
from test_events_service import cli_time, record


@pytest.fixture
def served(tmp_path):
    bus = EventsService()
    router = Router()
    system_routes.add_routes(router, system=None, events=bus)
    server = Server(router, max_workers=4)
    server.listen_unix(str(tmp_path / "api.sock"))
    server.start()
    client = Client(str(tmp_path / "api.sock"))
    yield bus, client
    client.close()
    server.stop()


def lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines()]


def test_since_and_until_in_the_past_answer_the_kept_messages_and_end(served):
    bus, client = served
    bus.container(record(labels={"a": "b"}), "create")
    bus.image("tag", "sha256:" + "e" * 64, "mytag:1")
    until = cli_time(bus._recent[-1]["timeNano"])
    status, headers, body = client.get(f"/v1.41/events?since=0&until={until}")
    assert (status, headers["content-type"], headers["transfer-encoding"]) == (200, "application/json", "chunked")
    assert [e["Action"] for e in lines(body)] == ["create", "tag"]
    filters = quote(json.dumps({"type": {"image": True}}))
    status, _, body = client.get(f"/events?since=0&until={until}&filters={filters}")
    assert [e["Action"] for e in lines(body)] == ["tag"]


def test_a_stream_sends_its_headers_at_once_then_each_new_message(served):
    bus, client = served
    client.send("GET", "/events")
    response = client.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 200
    bus.container(record(), "start")  # subscribed before the headers went out: not missed
    event = client.next_event()
    assert isinstance(event, h11.Data) and json.loads(event.data)["Action"] == "start"


@pytest.mark.parametrize("query, message", [
    ("since=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("since=5&until=3", "`since` time (5) cannot be after `until` time (3)"),
    ("filters=xx", "invalid filter"),
])
def test_bad_arguments_are_400_with_dockerds_message(served, query, message):
    _, client = served
    status, _, body = client.get(f"/events?{query}")
    assert (status, json.loads(body)) == (400, {"message": message})
