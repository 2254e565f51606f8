from __future__ import annotations

from policyscan.cli import console

console()
