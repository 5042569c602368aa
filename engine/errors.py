"""Errors the engine's API answers with: one class per status dockerd uses
(its errdefs kinds), mapped to HTTP in one table.

The message is what the client prints, so it is dockerd's wording
(`No such container: x`, `Invalid container name (x), only ... are allowed`);
the API layer answers ``{"message": str(err)}`` with ``http_status(err)``.
"""


class EngineError(Exception):
    """Any error the engine reports to a client; unclassified ones are 500s."""


class InvalidParameter(EngineError):
    """The request is wrong (bad JSON, a bad field value, an invalid name)."""


class Unauthorized(EngineError):
    """Credentials are missing or refused (registry login)."""


class Forbidden(EngineError):
    """The request is understood and refused (e.g. removing a running container)."""


class NotFound(EngineError):
    """No such container, image, network, volume or exec instance."""


class Conflict(EngineError):
    """The request clashes with current state (a name in use, an image in use)."""


class NotModified(EngineError):
    """Nothing to do: start of a started container, stop of a stopped one."""


class Unimplemented(EngineError):
    """A feature dockerd has and this engine does not (yet)."""


class Unavailable(EngineError):
    """A dependency (containerd, a registry) cannot be reached now."""


class System(EngineError):
    """Something failed inside the engine or below it (containerd, the runtime)."""


class BadBody(System):
    """A request body Go's JSON decoder would refuse, where dockerd 20.10
    answers 500 (the decode error carries no errdefs kind): container create."""


HTTP_STATUS = {
    InvalidParameter: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    NotModified: 304,
    Unimplemented: 501,
    Unavailable: 503,
    System: 500,
}


def http_status(err: BaseException) -> int:
    """The HTTP status dockerd would answer for this error (500 for any other)."""
    for cls in type(err).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
