"""`POST /build` (the legacy builder, as dockerd 20.10's postBuild serves it)
and `POST /build/prune`.

A build's reply is the JSON stream of its messages. An error before the
first message is an HTTP error (dockerd answers so while nothing is
flushed); a later one ends the stream as `errorDetail`. Quiet (`q`) keeps
the messages back: only the image ID goes out at the end, and on failure
what was kept and then the error, as dockerd does. The context lives in a
directory of its own for the build's length: closed when the stream ends,
fails, or the client goes away (the builds' generator is closed too, so
the build stops and cleans up).
"""
import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from engine.errors import EngineError, InvalidParameter, System
from engine.filters import Filters
from engine.services.streaming import error_message

from ..http import Request, Streamed, json_reply
from ..server import version_tuple
from ..streams import json_message

if TYPE_CHECKING:
    from engine.builder.context import BuildContext

log = logging.getLogger(__name__)

AUX_SINCE = (1, 30)  # API version from which the image ID also goes out as an aux message


def _close(messages: Iterator[dict]) -> None:
    """Ends the build (a generator's close; a plain iterator has nothing to end)."""
    close = getattr(messages, "close", None)
    if close is not None:
        close()


class _BuildStream:
    """The reply's chunks: the build's messages, as JSON lines; `close()`
    (the server calls it, also when it never iterated) ends the build and
    removes its context."""

    def __init__(self, request: Request, messages: Iterator[dict], first: dict | None,
                 context: "BuildContext", quiet: bool):
        self._request, self._messages, self._context = request, messages, context
        self._chunks = self._run(first, quiet, version_tuple(request.api_version) >= AUX_SINCE)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        try:
            self._chunks.close()
            _close(self._messages)
        finally:
            self._context.close()

    def _all_messages(self, first: dict | None) -> Iterator[dict]:
        """The build's messages; an exception it raises is its last, an errorDetail."""
        if first is not None:
            yield first
        try:
            for message in self._messages:
                if self._request.disconnected.is_set():
                    return  # quiet sends nothing the server could find the client gone by
                yield message
        except Exception as err:  # noqa: BLE001 - the client learns of any failure from the stream
            if not isinstance(err, EngineError):
                log.exception("build failed")
            yield error_message(str(err))

    def _run(self, first: dict | None, quiet: bool, aux: bool) -> Iterator[bytes]:
        kept, image_id = [], ""
        for message in self._all_messages(first):
            if "aux" in message:
                image_id = message["aux"].get("ID", image_id) if isinstance(message["aux"], dict) else image_id
                if not aux:
                    continue
            if not quiet:
                yield json_message(message)
            elif "errorDetail" in message:
                yield from (json_message(m) for m in kept)
                yield json_message(message)
                return
            else:
                kept.append(message)
        if quiet and image_id:
            yield json_message({"stream": image_id + "\n"})


def add_routes(router, service: Callable[[], object]) -> None:
    """``service()``: the builds, made at the first build (the builder is
    ~1.2 MiB an idle engine does not carry, so it is imported then too).
    Its ``build(options, context, disconnected)`` yields the legacy JSON
    messages (its generator closed when the client goes; an EngineError
    raised before its first message is the reply's status), ``prune(filters,
    all)`` answers a prune, ``tmp_dir`` is where contexts are received."""

    def build(request: Request):
        from engine.builder.context import receive_context
        from engine.builder.options import parse_build_query
        builds = service()
        options = parse_build_query(request.query, request.headers)
        context = receive_context(request.body.read, builds.tmp_dir, options.dockerfile)
        try:
            messages = iter(builds.build(options, context, request.disconnected))
            first = next(messages, None)
            if first is not None and "errorDetail" in first:  # nothing went out before it: dockerd's HTTP error
                _close(messages)
                raise System(first["errorDetail"].get("message", ""))
        except BaseException:
            context.close()
            raise
        return Streamed(_BuildStream(request, messages, first, context, options.quiet))

    def prune(request: Request):
        try:
            filters = Filters.parse(request.arg("filters"))
        except InvalidParameter as err:
            raise InvalidParameter(f"could not parse filters: {err}") from None
        keep_storage = request.arg("keep-storage") or "0"
        if not re.fullmatch(r"[+-]?[0-9]+", keep_storage):
            raise InvalidParameter(f"keep-storage is in bytes and expects an integer, got {keep_storage}: "
                                   f'strconv.Atoi: parsing "{keep_storage}": invalid syntax')
        return json_reply(service().prune(filters, request.bool_arg("all")))

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
