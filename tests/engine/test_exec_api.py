"""The exec endpoints' answers to bad and unlucky requests, compared with
real dockerd's: status and message, the daemon serving on."""
import http.client
import json
import socket
import time

import docker
import pytest

pytestmark = pytest.mark.root


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def call(daemon, method: str, path: str, body=None) -> tuple[int, str]:
    conn = UnixHTTP(daemon.socket)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
        conn.request(method, "/v1.41" + path, data, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        text = reply.read().decode()
        return reply.status, json.loads(text)["message"] if text.startswith("{\"message\"") else text
    finally:
        conn.close()


def _answers(daemon) -> dict:
    cli = docker.DockerClient(base_url=f"unix://{daemon.socket}", version="auto")
    container = cli.containers.run("busybox", ["sleep", "1000"], detach=True)
    stopped = cli.containers.create("busybox", ["true"])
    try:
        c = container.id
        made = call(daemon, "POST", f"/containers/{c}/exec", {"Cmd": ["true"]})
        exec_id = json.loads(made[1])["Id"]
        started = call(daemon, "POST", f"/exec/{exec_id}/start", {"Detach": True})
        while cli.api.exec_inspect(exec_id)["Running"]:
            time.sleep(0.05)
        answers = {
            "created": (made[0], len(exec_id)),
            "started detached": started,
            "started again": call(daemon, "POST", f"/exec/{exec_id}/start", {"Detach": True}),
            "no such container": call(daemon, "POST", "/containers/nosuch/exec", {"Cmd": ["true"]}),
            "not running": call(daemon, "POST", f"/containers/{stopped.id}/exec", {"Cmd": ["true"]}),
            "no command": call(daemon, "POST", f"/containers/{c}/exec", {}),
            "a string command": call(daemon, "POST", f"/containers/{c}/exec", {"Cmd": "true"}),
            "a bad tty flag": call(daemon, "POST", f"/containers/{c}/exec", {"Cmd": ["true"], "Tty": "yes"}),
            "no such exec to start": call(daemon, "POST", "/exec/nosuch/start", {"Detach": True}),
            "a bad detach flag": call(daemon, "POST", "/exec/nosuch/start", {"Detach": "yes"}),
            "no such exec to inspect": call(daemon, "GET", "/exec/nosuch/json"),
            "no such exec to resize": call(daemon, "POST", "/exec/nosuch/resize?h=10&w=10"),
            "a bad height": call(daemon, "POST", f"/exec/{exec_id}/resize?h=x&w=10"),
        }
        container.pause()
        answers["paused, by name"] = call(daemon, "POST", f"/containers/{container.name}/exec", {"Cmd": ["true"]})
        answers["paused, to start"] = call(daemon, "POST", f"/exec/{exec_id}/start", {"Detach": True})
        container.unpause()
        answers["still serving"] = call(daemon, "GET", "/_ping")
        return {key: tuple(str(part).replace(c, "<c>").replace(stopped.id, "<stopped>").replace(exec_id, "<exec>")
                           .replace(container.name, "<name>")
                           for part in value) for key, value in answers.items()}
    finally:
        container.remove(force=True)
        stopped.remove()
        cli.close()


def test_bad_and_unlucky_requests_as_dockerd_answers_them(engine_py, dockerd):
    ours = _answers(engine_py)
    assert ours["no such container"] == ("404", "No such container: nosuch")
    assert ours["not running"] == ("409", "Container <stopped> is not running")
    assert ours["no such exec to inspect"] == ("404", "No such exec instance: nosuch")
    assert ours == _answers(dockerd)
