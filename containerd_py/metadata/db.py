"""A SQLite database file in WAL mode, shared by the daemon's threads."""
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Database:
    """One connection serialised by a lock: metadata calls are short, and one
    writer at a time is what SQLite allows anyway."""

    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives power loss, not only a crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._lock = threading.RLock()
        self._depth = 0

    def create_schema(self, statements: str) -> None:
        with self.transaction() as conn:
            for statement in statements.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
