"""Named predicates: checks that need code, implemented once, named by rules.

One module per area; each exports a ``PREDICATES`` dict, merged here. A name defined twice is a
bug caught at import.
"""

from __future__ import annotations

import importlib

from policyscan.policy.conditions import Predicate

_MODULES = ("core", "env", "compose", "dockerfile", "nginx", "terraform")


def _collect() -> dict[str, Predicate]:
    merged: dict[str, Predicate] = {}
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
    return merged


PREDICATES: dict[str, Predicate] = _collect()
