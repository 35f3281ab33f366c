"""python -m acigen: what ninja's regeneration edge runs."""

import gc
import os
import signal
import sys

# A regeneration is a short run that makes many objects and few cycles: the
# cyclic collector's passes during the imports cost ~5% of it (issue 19).
# cli.run turns it back on for the subcommands that may run long.
gc.disable()
if os.environ.pop("ACIGEN_SIGINT", None) == "deferred":  # see rules.DEFER_SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)

# after the handler: a Ctrl-C while acigen loads is caught (acigen.console), and
# one while console itself loads (compiled the first time) here
try:
    from acigen.console import main
except KeyboardInterrupt:
    print("acigen: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
