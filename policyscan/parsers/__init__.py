"""One adapter per artifact kind. Each turns text into a typed document whose nodes carry
Spans; a syntax error becomes a Problem in the document, never an exception.

Adapters are imported on first use so that ``policyscan --version`` pays for none of them.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from policyscan.model import Artifact, Kind, Problem


class Document(Protocol):
    artifact: Artifact
    problems: list[Problem]


_ADAPTERS = {
    Kind.COMPOSE: "policyscan.parsers.compose",
    Kind.ENV: "policyscan.parsers.env",
    Kind.TERRAFORM: "policyscan.parsers.terraform",
    Kind.DOCKERFILE: "policyscan.parsers.dockerfile",
    Kind.NGINX: "policyscan.parsers.nginx",
}


def parse(artifact: Artifact, text: str) -> Document:
    module = importlib.import_module(_ADAPTERS[artifact.kind])
    document: Document = module.parse(artifact, text)
    return document
