"""The `acigen` command.  Its modules take a moment to load: a Ctrl-C then is
an interruption like any other (one line, exit 130), not a traceback."""

import sys


def main() -> int:
    try:
        from acigen.cli import main as cli_main
    except BaseException as exc:
        from acigen.errors import interrupted  # a leaf module: loads in a moment
        if not interrupted(exc):
            raise
        print("acigen: interrupted", file=sys.stderr)
        return 130
    return cli_main()
