"""The production deployment checklist that ships inside the package (item ids are stable).

``items()`` is the catalogue of checklist ids that rules refer to. ``load()`` adds the seed's
shape: its sections in order, each seed line with the seed's wording and the ids that decide it,
and the Sign-Off roles, which is what the checklist report (``policyscan checklist``) renders.
"""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True)
class Detail:
    """A sub-bullet of a seed line; ``items`` empty means no file can show it."""

    text: str
    items: tuple[str, ...] = ()
    extra: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``- [ ]`` line of the seed."""

    text: str
    items: tuple[str, ...] = ()
    details: tuple[Detail, ...] = ()
    command: str | None = None
    extra: bool = False

    def item_ids(self) -> tuple[str, ...]:
        """Every id that decides this line: its own, then its details', once each."""
        ids = list(self.items)
        for detail in self.details:
            ids.extend(detail.items)
        return tuple(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class Step:
    text: str
    command: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    part: str | None
    entries: tuple[Entry, ...] = ()
    notes: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()

    def item_ids(self) -> tuple[str, ...]:
        ids: list[str] = []
        for entry in self.entries:
            ids.extend(entry.item_ids())
        return tuple(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class Checklist:
    title: str
    version: str
    purpose: str
    items: Mapping[str, ChecklistItem]
    sections: tuple[Section, ...]
    sign_off: tuple[str, ...]
    notes: tuple[str, ...]


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("policyscan").joinpath("data/checklist.yaml").read_text(encoding="utf-8")
    )
    return raw


@lru_cache(maxsize=1)
def items() -> dict[str, ChecklistItem]:
    out = {}
    for item in _raw()["items"]:
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


def _detail(raw: dict[str, Any]) -> Detail:
    return Detail(str(raw["text"]), tuple(raw.get("items", ())), bool(raw.get("extra", False)))


def _entry(raw: dict[str, Any]) -> Entry:
    return Entry(
        str(raw["text"]),
        tuple(raw.get("items", ())),
        tuple(_detail(d) for d in raw.get("details", ())),
        raw.get("command"),
        bool(raw.get("extra", False)),
    )


def _section(raw: dict[str, Any]) -> Section:
    return Section(
        str(raw["title"]),
        raw.get("part"),
        tuple(_entry(e) for e in raw.get("entries", ())),
        tuple(str(n) for n in raw.get("notes", ())),
        tuple(Step(str(s["text"]), s.get("command")) for s in raw.get("steps", ())),
    )


@lru_cache(maxsize=1)
def load() -> Checklist:
    """The whole checklist; an id in ``sections`` that ``items`` lacks is a packaging bug."""
    raw = _raw()
    catalogue = items()
    sections = tuple(_section(s) for s in raw.get("sections", ()))
    for section in sections:
        for item_id in section.item_ids():
            if item_id not in catalogue:
                raise ValueError(f"checklist section {section.title!r}: unknown id {item_id!r}")
    return Checklist(
        str(raw.get("title", "Production Deployment Checklist")),
        str(raw.get("seed_version", "")),
        str(raw.get("purpose", "")),
        catalogue,
        sections,
        tuple(str(r) for r in raw.get("sign_off", ())),
        tuple(str(n) for n in raw.get("notes", ())),
    )
