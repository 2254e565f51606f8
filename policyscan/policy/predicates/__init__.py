"""Named predicates: checks that need code, implemented once, named by rules.

One module per area; each exports a ``PREDICATES`` dict, merged here. A name defined twice is a
bug caught at import.
"""

from __future__ import annotations

import importlib

from policyscan.model import Kind
from policyscan.policy.conditions import Predicate

_MODULES = ("core", "env", "compose", "dockerfile", "nginx", "terraform")


def _collect() -> tuple[dict[str, Predicate], dict[str, frozenset[Kind]]]:
    merged: dict[str, Predicate] = {}
    blames: dict[str, frozenset[Kind]] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # that area has no predicates (yet)
            raise
        for key, fn in module.PREDICATES.items():
            if key in merged:
                raise RuntimeError(f"predicate {key!r} is defined twice ({name})")
            merged[key] = fn
        blames.update(getattr(module, "BLAMES", {}))
    return merged, blames


PREDICATES: dict[str, Predicate]
# For a predicate of the project's own subject: the kinds of file its findings can be in
# (a module's BLAMES); a predicate not named here can blame any file.
BLAMES: dict[str, frozenset[Kind]]
PREDICATES, BLAMES = _collect()
