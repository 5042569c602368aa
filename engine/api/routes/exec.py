"""`docker exec`'s API: create, start (hijacked, or detached), resize, inspect, over the exec service."""
from engine.errors import EngineError, InvalidParameter
from engine.services.exec import ExecService, console_size
from engine.services.exec_io import Attached

from ..http import Hijack, Reply, Request, json_reply
from ..streams import STDERR, STDOUT, StreamWriter


def _atoi(text: str | None) -> int:
    """Go's strconv.Atoi, with its error, as dockerd parses h and w."""
    text = text or ""
    try:
        return int(text, 10)
    except ValueError:
        raise InvalidParameter(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def _start_options(request: Request) -> dict:
    body = request.json() or {}
    if not isinstance(body, dict):
        raise InvalidParameter("json: cannot unmarshal into Go value of type types.ExecStartCheck")
    for name in ("Detach", "Tty"):
        if not isinstance(body.get(name, False), bool):
            raise InvalidParameter(f"json: cannot unmarshal into Go struct field ExecStartCheck.{name} of type bool")
    return body


def add_routes(router, execs: ExecService) -> None:
    def create(request: Request):
        return json_reply({"Id": execs.create(request.params["name"], request.json())}, 201)

    def start(request: Request):
        options = _start_options(request)
        exec_id, size = request.params["id"], console_size(options.get("ConsoleSize"))
        execs.check_startable(exec_id)
        if options.get("Detach"):
            execs.start(exec_id, None, size)
            return Reply(200, b"", "")

        def serve(stream):
            # With a TTY the output is the terminal's, raw; without, stdout and stderr are framed apart.
            tty = bool(options.get("Tty"))
            stdout = stream.write if tty else StreamWriter(stream.write, STDOUT).write
            stderr = None if tty else StreamWriter(stream.write, STDERR).write
            try:
                execs.start(exec_id, Attached(stream.read, stdout, stderr), size)
            except EngineError as err:  # as dockerd: the error goes to the client's output
                try:
                    stdout(f"{err}\r\n".encode())
                except OSError:
                    pass  # the client has gone

        return Hijack(serve)

    def resize(request: Request):
        execs.resize(request.params["id"], _atoi(request.arg("h")), _atoi(request.arg("w")))
        return Reply(200, b"", "")

    router.add("POST", "/containers/{name}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", lambda request: json_reply(execs.inspect(request.params["id"])))
