"""The turn to write to one SQLite database, which writers take in line (see base.py).

Two `flock`s on two files beside the database. The turn itself: held from before a
transaction begins until it commits or rolls back. And the line in front of it: a writer
holds the line while it waits for the turn, and lets the line go once it has the turn. A
writer that lets the turn go and wants it again must first get through the line, which the
writer waiting for the turn holds: so it cannot take the turn back before the one who waited,
however late the kernel lets that one run (a lone `flock` wakes its waiter and lets whoever
runs first take it: on this VM the writer that had just let go, again and again).
"""

from __future__ import annotations

import fcntl
import os


class WriteTurn:
    """One connection's way to the turn of the database at `database` (a path)."""

    def __init__(self, database: str) -> None:
        self._turn = _open_private(f"{database}-turn")
        self._line = _open_private(f"{database}-turn-line")
        self.is_held = False

    def take(self) -> None:
        """Wait in line for the turn; no time limit (see base.py)."""
        if self.is_held:
            return
        fcntl.flock(self._line, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._turn, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._line, fcntl.LOCK_UN)
        self.is_held = True

    def leave(self) -> None:
        if self.is_held:
            self.is_held = False
            fcntl.flock(self._turn, fcntl.LOCK_UN)

    def close(self) -> None:
        """Let the turn go (closing the file does) and close both files."""
        self.is_held = False
        os.close(self._turn)
        os.close(self._line)


def _open_private(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
