"""Keep the data directory private to the user Postroom runs as.

It holds the SQLite database (password hashes, contacts, every message with its
attachments), the secret key and uploaded imports: nothing another local user may read.
Postroom's processes create files with umask 077 (directories 0700, files 0600, SQLite's
-wal and -shm files too), and a data directory left open by an earlier version, or made by
hand, is closed at start.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

# Group and others get nothing: directories 0700, files 0600 (Postfix's own umask too).
PRIVATE_UMASK = 0o077
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def data_dir_make_private(data_dir: Path) -> list[str]:
    """Create files privately from now on, and close `data_dir` and its entries to others.

    Returns a warning for each path that could not be closed (also written to stderr, since
    logging is not set up while settings load); a start does not stop for it.
    """
    os.umask(PRIVATE_UMASK)
    if not data_dir.is_dir():
        return []  # created later, under the umask
    warnings = [
        warning
        for path in (data_dir, *data_dir.iterdir())
        if (warning := _close_to_others(path, data_dir=data_dir)) is not None
    ]
    for warning in warnings:
        sys.stderr.write(f"Warning: {warning}\n")
    return warnings


def _close_to_others(path: Path, *, data_dir: Path) -> str | None:
    """Drop group and other permissions of `path`; return why if that fails."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None  # an entry that went away meanwhile (SQLite's -shm at a last close)
    if stat.S_ISLNK(mode) or not mode & _OPEN_TO_OTHERS:
        return None  # a link's own mode means nothing; its target is not ours to change
    try:
        path.chmod(stat.S_IMODE(mode) & ~_OPEN_TO_OTHERS)
    except OSError as error:
        what = "The data directory" if path == data_dir else "A file in the data directory,"
        private = "700" if stat.S_ISDIR(mode) else "600"
        return (
            f"{what} {path} can be read by other users of this machine (mode "
            f"{stat.S_IMODE(mode):o}), and Postroom could not change that "
            f"({error.strerror or error}). It holds password hashes, contacts and mail: as "
            f"the owner of {path}, run `chmod {private} {path}`."
        )
    return None
