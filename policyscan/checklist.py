"""The production deployment checklist that ships inside the package (item ids are stable)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    id: str
    section: str
    text: str
    static: str
    artifacts: tuple[str, ...]
    evidence: str
    violation: str


@lru_cache(maxsize=1)
def items() -> dict[str, ChecklistItem]:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("policyscan").joinpath("data/checklist.yaml").read_text(encoding="utf-8")
    )
    out = {}
    for item in raw["items"]:
        out[item["id"]] = ChecklistItem(
            item["id"],
            item.get("section", ""),
            item.get("text", ""),
            item.get("static", "none"),
            tuple(item.get("artifacts", ())),
            item.get("evidence", ""),
            item.get("violation", ""),
        )
    return out
