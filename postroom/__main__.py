"""The `postroom` command: Django's management commands under Postroom's own name.

`postroom run` starts everything for a local install, `postroom doctor` checks the SMTP
connection, `postroom createadmin` makes an administrator; Django's own commands
(`migrate`, `shell`, ...) work too.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postroom.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["postroom", *sys.argv[1:]])


if __name__ == "__main__":
    main()
