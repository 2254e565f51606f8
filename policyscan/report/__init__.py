"""One formatter per output format, each ``render(report) -> str``; loaded on demand."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
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
    module = importlib.import_module(FORMATS[fmt])
    text: str = module.render(report)
    return text
