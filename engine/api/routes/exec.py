"""`docker exec`'s API: create, start (hijacked, or detached), resize, inspect, over the exec service."""
from engine.errors import EngineError
from engine.services.exec import ExecService, StartOptions
from engine.services.exec_io import Attached

from ..http import Hijack, Reply, Request, json_reply
from ..streams import STDERR, STDOUT, StreamWriter


def add_routes(router, execs: ExecService) -> None:
    def create(request: Request):
        return json_reply({"Id": execs.create(request.params["name"], request.json())}, 201)

    def start(request: Request):
        options, exec_id = StartOptions.parse(request.json()), request.params["id"]
        execs.check_startable(exec_id)
        if options.detach:
            execs.start(exec_id, None, options.console_size)
            return Reply(200, b"", "")

        def serve(stream):
            # With a TTY the output is the terminal's, raw; without, stdout and stderr are framed apart.
            stdout = stream.write if options.tty else StreamWriter(stream.write, STDOUT).write
            stderr = None if options.tty else StreamWriter(stream.write, STDERR).write
            try:
                execs.start(exec_id, Attached(stream.read, stdout, stderr), options.console_size)
            except EngineError as err:  # as dockerd: the error goes to the client's output
                try:
                    stdout(f"{err}\r\n".encode())
                except OSError:
                    pass  # the client has gone

        return Hijack(serve)

    def resize(request: Request):
        execs.resize(request.params["id"], request.int_arg("h"), request.int_arg("w"))
        return Reply(200, b"", "")

    router.add("POST", "/containers/{name}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", lambda request: json_reply(execs.inspect(request.params["id"])))
