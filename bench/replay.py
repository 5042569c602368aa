"""A server that answers the docker CLI from memory, with bytes a daemon gave
before: timed against it, a `docker ps` costs what the CLI itself spends
(starting, the ping, reading and printing the list), the part of every
`docker ps` that no daemon can take away. bench/engine.py reports it beside
the daemons' rows, so a ratio that includes the CLI can be read for what the
daemon controls. Python 3.11 standard library only.
"""
import os
import socket
import threading

API_VERSION = "1.41"  # what the ping says, so the CLI asks for /v1.41/... paths


class Replay:
    """Serves `answers` ({(method, path): JSON body bytes}) on a unix socket
    at `path`, each request on a kept-alive connection, until close(); GET
    and HEAD of /_ping are answered as a daemon answers them."""

    def __init__(self, path, answers):
        self.path = path
        self.answers = {("GET", "/_ping"): b"OK", ("HEAD", "/_ping"): b"", **answers}
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(path)
        self._listener.listen(16)
        threading.Thread(target=self._accept, name="replay", daemon=True).start()

    def close(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return   # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        pending = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = conn.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")   # requests without a body (GET, HEAD)
                method, target = head.split(b"\r\n", 1)[0].decode().split(" ")[:2]
                conn.sendall(self._reply(method, target))

    def _reply(self, method, target):
        body = self.answers.get((method, target))
        status = "200 OK"
        if body is None:
            status, body = "404 Not Found", b'{"message":"page not found"}\n'
        kind = "text/plain; charset=utf-8" if target == "/_ping" else "application/json"
        head = (f"HTTP/1.1 {status}\r\nApi-Version: {API_VERSION}\r\nOstype: linux\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head if method == "HEAD" else head + body
