"""docker compose files: the YAML tree, located, and the services in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from policyscan.model import Artifact, Problem, Span, Value
from policyscan.parsers import yamlnodes


@dataclass(slots=True)
class ComposeDocument:
    artifact: Artifact
    root: Value | None = None
    problems: list[Problem] = field(default_factory=list)
    # The values tagged `!reset` or `!override`, in the tree above (the same objects).
    merge_tags: list[tuple[Value, str]] = field(default_factory=list)

    def services(self) -> dict[str, Value]:
        if self.root is None:
            return {}
        services = self.root.get("services")
        if services is None or not isinstance(services.data, dict):
            return {}
        return {name: svc for name, svc in services.data.items() if isinstance(svc.data, dict)}


def parse(artifact: Artifact, text: str) -> ComposeDocument:
    root, problems, tagged = yamlnodes.load_tagged(artifact.path, text)
    doc = ComposeDocument(artifact, root, problems, tagged)
    if root is not None and not isinstance(root.data, dict):
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(root.span.start_line),
                "not a compose file: the top level is not a mapping",
                "parse-error",
            )
        )
        doc.root = None
    return doc
