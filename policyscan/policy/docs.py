"""A rule's documentation, from its YAML alone: `policyscan explain`, SARIF help and
docs/rules/<ID>.md are all rendered here, so they cannot drift apart."""

from __future__ import annotations

from policyscan.policy.loader import Rule

DOCS_BASE = "https://github.com/policyscan/policyscan/blob/main/docs/rules/"


def help_uri(rule: Rule) -> str:
    return f"{DOCS_BASE}{rule.id}.md"


def short_description(rule: Rule) -> str:
    return rule.model.docs.what.strip().split("\n")[0][:1000]


def markdown(rule: Rule, *, examples: bool = True) -> str:
    docs = rule.model.docs
    out = [
        f"# {rule.id} {rule.name}",
        "",
        f"Severity: **{rule.severity.value}** · confidence: {rule.confidence} · applies to: "
        + ", ".join(sorted(a.value for a in rule.artifacts))
        + " · checklist: "
        + ", ".join(f"`{c}`" for c in rule.checklist),
        "",
        "## What it does",
        "",
        docs.what.strip(),
        "",
        "## Why is this bad",
        "",
        docs.why.strip(),
        "",
        "## How to fix",
        "",
        docs.fix.strip(),
    ]
    if examples:
        fail = rule.model.examples.fail[0]
        good = rule.model.examples.pass_[0]
        out += ["", "## Example", ""]
        out += _files(fail.files)
        out += ["", "## Use instead", ""]
        out += _files(good.files)
    if docs.references:
        out += ["", "## References", ""]
        out += [f"- <{ref}>" for ref in docs.references]
    return "\n".join(out) + "\n"


def _files(files: dict[str, str]) -> list[str]:
    out = []
    for name, content in files.items():
        out += [f"`{name}`:", "", "```", content.rstrip("\n"), "```", ""]
    return out[:-1]


def text(rule: Rule) -> str:
    """Plain text for a terminal: markdown without the decoration."""
    return markdown(rule).replace("```\n", "").replace("```", "").replace("**", "").replace("`", "")


def index(rules: list[Rule]) -> str:
    lines = [
        "# Rules",
        "",
        "Generated from `policies/` by `python -m policyscan.policy.docs docs/rules`; do not edit.",
        "",
        "| id | name | severity | applies to | checklist |",
        "|---|---|---|---|---|",
    ]
    for rule in rules:
        kinds = ", ".join(sorted(a.value for a in rule.artifacts))
        items = ", ".join(f"`{c}`" for c in rule.checklist)
        link = f"[{rule.id}]({rule.id}.md)"
        lines.append(f"| {link} | {rule.name} | {rule.severity.value} | {kinds} | {items} |")
    return "\n".join(lines) + "\n"


def generate(directory: str) -> list[str]:
    """Write docs/rules/<ID>.md and README.md for the built-in rules; return the files."""
    from pathlib import Path

    from policyscan.policy.loader import load_policies

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rules = load_policies()
    written = []
    for rule in rules:
        path = out / f"{rule.id}.md"
        path.write_text(markdown(rule), encoding="utf-8")
        written.append(str(path))
    (out / "README.md").write_text(index(rules), encoding="utf-8")
    keep = {f"{r.id}.md" for r in rules} | {"README.md"}
    for stale in out.glob("*.md"):
        if stale.name not in keep:
            stale.unlink()  # a removed rule's page must not linger
    return written


if __name__ == "__main__":
    import sys

    generate(sys.argv[1] if len(sys.argv) > 1 else "docs/rules")
