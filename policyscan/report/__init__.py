"""One formatter per output format, each ``render(report) -> str``; loaded on demand. A
formatter whose output grows with the findings may also give ``chunks(report)``, the same text
in pieces, so that a large report is written as it is made rather than held whole."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from policyscan.model import ScanResult
from policyscan.policy.loader import Rule

FORMATS: dict[str, str] = {
    "text": "policyscan.report.text",
    "json": "policyscan.report.json_report",
    "sarif": "policyscan.report.sarif",
    "github": "policyscan.report.github",
    "junit": "policyscan.report.junit",
    "markdown": "policyscan.report.markdown",
}


@dataclass(frozen=True, slots=True)
class Report:
    result: ScanResult
    rules: Mapping[str, Rule]
    color: bool = False
    quiet: bool = False
    include_suppressed: bool = False


def render(fmt: str, report: Report) -> str:
    return "".join(chunks(fmt, report))


def chunks(fmt: str, report: Report) -> Iterator[str]:
    """The report in pieces whose concatenation is ``render``'s text."""
    module = importlib.import_module(FORMATS[fmt])
    if hasattr(module, "chunks"):
        yield from module.chunks(report)
    else:
        yield module.render(report)
