"""python -m acigen: what ninja's regeneration edge runs."""

import os
import signal
import sys

if os.environ.pop("ACIGEN_SIGINT", None) == "deferred":  # see rules.DEFER_SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)

# after the handler: a Ctrl-C while acigen loads is caught (acigen.console)
from acigen.console import main

sys.exit(main())
