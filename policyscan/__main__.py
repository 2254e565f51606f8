from __future__ import annotations

import sys

from policyscan.cli import main

sys.exit(main())
