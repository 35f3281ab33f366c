"""The `acigen` command.  Its modules take a moment to load: a Ctrl-C then is
an interruption like any other (one line, exit 130), not a traceback."""

import signal
import sys

_lost_interrupts: list[BaseException] = []


def _keep_lost_interrupt(info) -> None:  # type: ignore[no-untyped-def]
    """A Ctrl-C can land in a callback Python cannot raise from (importlib's
    module-lock cleanup, a finalizer): Python would print "Exception ignored"
    with a traceback and go on.  Keep it instead, as an interruption that
    acigen reports when it ends."""
    if issubclass(info.exc_type, KeyboardInterrupt):
        _lost_interrupts.append(info.exc_value)
        return
    sys.__unraisablehook__(info)


def _interrupted() -> int:
    print("acigen: interrupted", file=sys.stderr)
    return 130


def _settled(status: int) -> int:
    """The work is done and STATUS decided: from here a Ctrl-C is ignored.
    Python puts the default SIGINT action back as it shuts down, so one that
    landed then would kill acigen by the signal, with no line, after a build
    that had finished."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:  # it came just before: it counts
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return _interrupted()
    return status


def main() -> int:
    sys.unraisablehook = _keep_lost_interrupt
    try:
        from acigen.cli import main as cli_main
    except BaseException as exc:
        from acigen.errors import interrupted  # a leaf module: loads in a moment
        if not interrupted(exc):
            raise
        return _settled(_interrupted())
    if _lost_interrupts:
        return _settled(_interrupted())
    status = cli_main()
    return _settled(_interrupted() if _lost_interrupts else status)
