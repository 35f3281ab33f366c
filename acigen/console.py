"""The `acigen` command.  Its modules take a moment to load: a Ctrl-C then is
an interruption like any other (one line, exit 130), not a traceback."""

import sys


def interrupted(exc: BaseException) -> bool:
    """EXC is, or was caused by, a Ctrl-C.  (Python 3.11 wraps one that lands
    while a class is being made in a RuntimeError from __set_name__.)"""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain a few links long at most
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main() -> int:
    try:
        from acigen.cli import main as cli_main
    except BaseException as exc:
        if not interrupted(exc):
            raise
        print("acigen: interrupted", file=sys.stderr)
        return 130
    return cli_main()
