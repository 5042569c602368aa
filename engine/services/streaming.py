"""Work that reports as it goes (a pull, a push) on a thread of its own, its
messages handed to the request's JSON stream as they come. The work runs to
its end even when the client leaves meanwhile, as dockerd's does."""
import queue
import threading
from collections.abc import Callable, Generator

Emit = Callable[[dict], None]


def in_thread(work: Callable[[Emit], object], name: str) -> Generator[dict, None, object]:
    """Yields what work emits; returns what it returns, or raises what it raised."""
    messages: queue.Queue = queue.Queue()
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = work(messages.put)
        except BaseException as e:  # handed to the stream's reader
            outcome["error"] = e
        finally:
            messages.put(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    while (message := messages.get()) is not None:
        yield message
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def error_message(text: str) -> dict:
    """A stream's last message when it failed (jsonmessage's errorDetail and error)."""
    return {"errorDetail": {"message": text}, "error": text}
