"""A log handler for the test process."""

from __future__ import annotations

import logging
import sys


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes.

    pytest swaps `sys.stderr` for its captures and closes them afterwards; a plain
    StreamHandler keeps the stream it was made with, so every later record printed
    "--- Logging error --- I/O operation on closed file" into the run's output.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)
