"""python -m acigen: what ninja's regeneration edge runs."""

import sys

from acigen.cli import main

sys.exit(main())
