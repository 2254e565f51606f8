"""The command line: thin, ``main(argv) -> int``, one funnel from errors to exit codes.

Exit codes (stable, documented in README): 0 no finding at or above ``--fail-on``; 1 findings;
2 usage, configuration or policy error; 3 internal error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from policyscan import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
SEVERITIES = ("critical", "high", "medium", "low", "info", "never")
FORMATS = ("text", "json", "sarif")


class _DefaultToScan(click.Group):
    """``policyscan PATH...`` means ``policyscan scan PATH...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["scan", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToScan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policyscan")
def cli() -> None:
    """Check deployment files (compose, .env, Terraform, Dockerfiles, nginx) against the
    production deployment checklist.

    \b
    policyscan [PATH]...             scan (the default command)
    policyscan rules                 list the rules
    policyscan explain RULE_ID       a rule's documentation and examples
    """


def _color(no_color: bool, output: str | None) -> bool:
    if no_color or output or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default="low", show_default=True,
              help="Exit 1 when a finding is at or above this severity.")
@click.option("--select", multiple=True, help="Run only these rule ids (repeatable, or comma-separated).")
@click.option("--ignore", "ignore_rules", multiple=True, help="Skip these rule ids.")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Add a directory of your own policies.")
@click.option("--max-file-size", type=int, default=None, help="Skip files larger than this many bytes.")
@click.option("--no-color", is_flag=True, help="No ANSI colour (also NO_COLOR=1).")
@click.option("-q", "--quiet", is_flag=True, help="Findings only: no problems, no summary.")
def scan(paths: tuple[str, ...], fmt: str, output: str | None, fail_on: str, select: tuple[str, ...],
         ignore_rules: tuple[str, ...], policy_dirs: tuple[str, ...], max_file_size: int | None,
         no_color: bool, quiet: bool) -> None:
    """Scan PATHS (files or directories; default: the current directory)."""
    from policyscan.discover import DEFAULT_MAX_BYTES, DiscoveryOptions
    from policyscan.policy.engine import select_rules
    from policyscan.policy.loader import load_policies
    from policyscan.report import Report, render
    from policyscan.scan import ScanOptions, scan as run_scan

    rules = load_policies(policy_dirs)
    chosen = select_rules(rules, _split(select), _split(ignore_rules))
    _check_known(rules, _split(select) + _split(ignore_rules))
    options = ScanOptions(
        paths=paths or (".",),
        discovery=DiscoveryOptions(max_bytes=max_file_size or DEFAULT_MAX_BYTES),
    )
    result = run_scan(chosen, options)
    report = Report(result, {r.id: r for r in chosen}, color=_color(no_color, output), quiet=quiet)
    _emit(render(fmt, report), output)
    raise SystemExit(_exit_code(result, fail_on))


def _split(values: Sequence[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _check_known(rules: Sequence[Any], ids: Sequence[str]) -> None:
    from policyscan.errors import UsageError

    known = {r.id for r in rules} | {r.name for r in rules}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(f"unknown rule id: {', '.join(unknown)} (see `policyscan rules`)")


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        except OSError as exc:
            from policyscan.errors import UsageError

            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    else:
        click.echo(text, nl=False)


def _exit_code(result: Any, fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_OK
    from policyscan.model import Severity

    threshold = Severity(fail_on).rank
    failing = any(f.suppressed is None and f.severity.rank >= threshold for f in result.findings)
    return EXIT_FINDINGS if failing else EXIT_OK


@cli.command()
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(file_okay=False))
def rules(fmt: str, policy_dirs: tuple[str, ...]) -> None:
    """List the rules with their severity and checklist ids."""
    import json

    from policyscan.policy.docs import short_description
    from policyscan.policy.loader import load_policies

    loaded = load_policies(policy_dirs)
    if fmt == "json":
        click.echo(json.dumps([
            {"id": r.id, "name": r.name, "severity": r.severity.value, "scope": r.scope,
             "artifacts": sorted(a.value for a in r.artifacts), "checklist": list(r.checklist),
             "description": short_description(r), "builtin": r.builtin}
            for r in loaded
        ], indent=2))
        return
    for r in loaded:
        kinds = ",".join(sorted(a.value for a in r.artifacts))
        click.echo(f"{r.id:<8} {r.severity.value:<8} {r.name:<44} {kinds:<28} {' '.join(r.checklist)}")


@cli.command()
@click.argument("rule_id")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(file_okay=False))
def explain(rule_id: str, policy_dirs: tuple[str, ...]) -> None:
    """Show a rule's documentation and examples."""
    from policyscan.errors import UsageError
    from policyscan.policy.docs import text
    from policyscan.policy.loader import load_policies

    for rule in load_policies(policy_dirs):
        if rule_id in (rule.id, rule.name):
            click.echo(text(rule), nl=False)
            return
    raise UsageError(f"unknown rule id: {rule_id} (see `policyscan rules`)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every outcome becomes an exit code (no traceback unless POLICYSCAN_DEBUG)."""
    from policyscan.errors import PolicyscanError

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="policyscan", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except PolicyscanError as exc:
        click.echo(f"policyscan: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the funnel: report, never dump a traceback on users
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        click.echo(f"policyscan: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("policyscan: set POLICYSCAN_DEBUG=1 for the traceback, and please report it", err=True)
        return EXIT_INTERNAL
    return EXIT_OK
