"""python -m acigen: what ninja's regeneration edge runs."""

import os
import signal
import sys

if os.environ.pop("ACIGEN_SIGINT", None) == "deferred":  # see rules.DEFER_SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    from acigen.cli import main
except KeyboardInterrupt:
    print("acigen: interrupted", file=sys.stderr)
    sys.exit(130)  # ExitCode.INTERRUPTED: nothing of acigen is loaded yet

sys.exit(main())
