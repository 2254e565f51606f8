"""The command line: thin, ``main(argv) -> int``, one funnel from errors to exit codes.

Exit codes (stable, documented in README): 0 no finding at or above ``--fail-on``; 1 findings;
2 usage, configuration or policy error, or a report that cannot be written; 3 internal error.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click

from policyscan import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
SEVERITIES = ("critical", "high", "medium", "low", "info", "never")
FORMATS = ("text", "json", "sarif", "github", "junit", "markdown")


class _DefaultToScan(click.Group):
    """``policyscan PATH...`` means ``policyscan scan PATH...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")
        ):
            args = ["scan", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToScan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policyscan")
def cli() -> None:
    """Check deployment files (compose, .env, Terraform, Dockerfiles, nginx) against the
    production deployment checklist.

    \b
    policyscan [PATH]...             scan (the default command)
    policyscan baseline [PATH]       record today's findings; later scans report new ones
    policyscan checklist [PATH]      the deployment checklist, filled in from the files
    policyscan rules                 list the rules
    policyscan explain RULE_ID       a rule's documentation and examples
    policyscan cache clear           drop the scan cache
    """


# Every command that loads rules takes the user's policy directories the same way.
_policies_option = click.option(
    "--policies",
    "policy_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Add a directory of your own policies.",
)


def _color(no_color: bool, output: str | None) -> bool:
    if no_color or output or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


class _ScanCommand(click.Command):
    """Remembers the order in which ``--format`` and ``-o`` were given, so that each ``-o FILE``
    goes with the ``--format`` before it (click keeps each repeated option's values, not how
    two options interleave)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))
            ctx.meta["policyscan.outputs"] = [
                p.name for p in order if getattr(p, "name", None) in ("formats", "outputs")
            ]
        except click.UsageError:
            pass  # the real parse below reports it
        return super().parse_args(ctx, args)


def _pair_outputs(
    formats: Sequence[str], outputs: Sequence[str], order: Sequence[str] | None
) -> list[tuple[str, str | None]]:
    """``--format sarif -o results.sarif --format text`` -> [(sarif, results.sarif), (text, None)].
    An ``-o`` before any ``--format`` goes with the next one; with no ``--format`` it is text."""
    from policyscan.errors import UsageError

    consistent = order is not None and (order.count("formats"), order.count("outputs")) == (
        len(formats),
        len(outputs),
    )
    if order is None or not consistent:
        order = ["formats"] * len(formats) + ["outputs"] * len(outputs)
    pairs: list[list[str | None]] = []
    pending: list[str] = []
    fmt_iter, out_iter = iter(formats), iter(outputs)
    for name in order:
        if name == "formats":
            pairs.append([next(fmt_iter), pending.pop(0) if pending else None])
        elif pairs and pairs[-1][1] is None:
            pairs[-1][1] = next(out_iter)
        else:
            pending.append(next(out_iter))
    if pending and not formats:
        pairs.append(["text", pending.pop(0)])
    if pending:
        raise UsageError(
            f"-o {pending[0]}: no --format left to write there (write --format FMT -o FILE)"
        )
    if not pairs:
        pairs.append(["text", None])
    result = [(str(f), None if o in (None, "-") else o) for f, o in pairs]
    to_stdout = [f for f, o in result if o is None]
    if len(to_stdout) > 1:
        raise UsageError(
            f"formats {', '.join(to_stdout)} would all go to standard output: "
            "give all but one -o FILE"
        )
    files = [os.path.abspath(o) for _, o in result if o is not None]
    if len(files) != len(set(files)):
        raise UsageError("two formats are written to the same file")
    return result


@cli.command(cls=_ScanCommand)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "-f",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    help="Output format [default: text]. Repeatable: each -o FILE writes the --format before it.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Write the preceding --format to FILE (repeatable).",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 when a finding is at or above this severity "
    "[default: low, or the config's fail-on].",
)
@click.option(
    "--select", multiple=True, help="Run only these rule ids (repeatable, or comma-separated)."
)
@click.option("--ignore", "ignore_rules", multiple=True, help="Skip these rule ids.")
@_policies_option
@click.option("--exclude", multiple=True, help="Skip paths matching this glob (repeatable).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Configuration file [default: .policyscan.yaml or pyproject.toml, searched upward].",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="Report only findings not recorded in this baseline file.",
)
@click.option(
    "--changed-since",
    metavar="REF",
    help="Scan only files changed since git REF (plus staged and unstaged changes).",
)
@click.option(
    "--warn-unused-ignores", is_flag=True, help="Report ignore comments that silence nothing."
)
@click.option(
    "--sarif-include-suppressed",
    is_flag=True,
    help="Keep silenced findings in SARIF, marked as suppressed.",
)
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule.")
@click.option(
    "--max-file-size", type=int, default=None, help="Skip files larger than this many bytes."
)
@click.option("--no-color", is_flag=True, help="No ANSI colour (also NO_COLOR=1).")
@click.option("-q", "--quiet", is_flag=True, help="Findings only: no problems, no summary.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that parse files and run rules [default: the number of "
    "cores; small scans use one].",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the cache (.policyscan_cache/ in the scanned root).",
)
def scan(
    paths: tuple[str, ...],
    formats: tuple[str, ...],
    outputs: tuple[str, ...],
    fail_on: str | None,
    select: tuple[str, ...],
    ignore_rules: tuple[str, ...],
    policy_dirs: tuple[str, ...],
    exclude: tuple[str, ...],
    config_file: str | None,
    baseline: str | None,
    changed_since: str | None,
    warn_unused_ignores: bool,
    sarif_include_suppressed: bool,
    statistics: bool,
    max_file_size: int | None,
    no_color: bool,
    quiet: bool,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Scan PATHS (files or directories; default: the current directory).

    Given files (as pre-commit does), only those are reported on, with the files around them
    read for context.
    """
    from policyscan.plan import Settings, make_plan
    from policyscan.report import Report, chunks

    order = click.get_current_context().meta.get("policyscan.outputs")
    targets = _pair_outputs(formats, outputs, order)
    plan = make_plan(
        Settings(
            paths=paths,
            config=config_file,
            select=select,
            ignore=ignore_rules,
            policy_dirs=policy_dirs,
            exclude=exclude,
            fail_on=fail_on,
            max_file_size=max_file_size,
            baseline=baseline,
            changed_since=changed_since,
            warn_unused_ignores=warn_unused_ignores,
        )
    )
    result = _run(plan, jobs=jobs, cache=not no_cache)
    rules_by_id = {r.id: r for r in plan.rules}
    for fmt, output in targets:
        report = Report(
            result,
            rules_by_id,
            color=_color(no_color, output),
            quiet=quiet,
            include_suppressed=sarif_include_suppressed,
        )
        _emit(chunks(fmt, report), output)
    if statistics:
        click.echo(_statistics(result, rules_by_id), nl=False)
    unexplained = sum(1 for f in result.findings if f.suppressed == "")
    if unexplained and not quiet:
        are = "findings are" if unexplained != 1 else "finding is"
        click.echo(
            f"policyscan: note: {unexplained} {are} ignored without a reason "
            "(write it after the ignore comment)",
            err=True,
        )
    raise SystemExit(_exit_code(result, plan.fail_on))


def _run(plan: Any, jobs: int | None = None, cache: bool = True, evidence: bool = False) -> Any:
    import dataclasses

    from policyscan import progress
    from policyscan.model import ScanResult
    from policyscan.scan import default_jobs
    from policyscan.scan import scan as run_scan

    if plan.nothing_to_scan:
        return ScanResult(root=plan.root, rules_run=[r.id for r in plan.rules])
    bar = progress.Progress(sys.stderr) if progress.wanted(sys.stderr) else None
    options = dataclasses.replace(
        plan.scan_options(bar), jobs=jobs or default_jobs(), cache=cache, evidence=evidence
    )
    try:
        result = run_scan(plan.rules, options)
    finally:
        if bar is not None:
            bar.close()
    if _KEPT is not None:
        _KEPT.append(result)
    return result


def _statistics(result: Any, rules: Any) -> str:
    from collections import Counter

    active = Counter(f.rule_id for f in result.findings if f.suppressed is None)
    silenced = Counter(f.rule_id for f in result.findings if f.suppressed is not None)
    lines = []
    for rule_id in sorted(set(active) | set(silenced), key=lambda r: (-active[r], r)):
        rule = rules.get(rule_id)
        extra = f"  ({silenced[rule_id]} silenced)" if silenced[rule_id] else ""
        name = rule.name if rule else ""
        severity = rule.severity.value if rule else ""
        lines.append(f"{active[rule_id]:>5}  {rule_id:<8} {severity:<8} {name}{extra}")
    total = sum(active.values())
    extra = f"  ({sum(silenced.values())} silenced)" if silenced else ""
    lines.append(f"{total:>5}  total{extra}")
    return "\n".join(lines) + "\n"


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Baseline file [default: the config's baseline, else .policyscan-baseline.json "
    "beside the config file, else in the current directory].",
)
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="Configuration file."
)
@click.option("--select", multiple=True, help="Record only these rule ids.")
@click.option("--ignore", "ignore_rules", multiple=True, help="Do not record these rule ids.")
@_policies_option
@click.option("--exclude", multiple=True, help="Skip paths matching this glob (repeatable).")
def baseline(
    paths: tuple[str, ...],
    output: str | None,
    config_file: str | None,
    select: tuple[str, ...],
    ignore_rules: tuple[str, ...],
    policy_dirs: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Record today's findings in PATHS so that `policyscan --baseline FILE` reports only new ones.

    Findings are recorded by fingerprint (rule, file, the node's logical key and what is wrong),
    never by line, and without any value: moving code keeps a finding recorded, changing the
    offending value makes it new.
    """
    from policyscan.errors import UsageError
    from policyscan.plan import Settings, default_baseline_path, make_plan
    from policyscan.suppress import baseline_text

    settings = Settings(
        paths=paths,
        config=config_file,
        select=select,
        ignore=ignore_rules,
        policy_dirs=policy_dirs,
        exclude=exclude,
        use_baseline=False,
    )
    target = os.path.abspath(output) if output else default_baseline_path(settings)
    plan = make_plan(Settings(**{**_fields(settings), "baseline": target}))
    result = _run(plan)
    text = baseline_text(result.findings, result.root, target)
    try:
        with open(target, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    recorded = sum(1 for f in result.findings if f.suppressed is None)
    noun = "finding" if recorded == 1 else "findings"
    click.echo(f"policyscan: recorded {recorded} {noun} in {target}", err=True)
    if result.problems:
        click.echo(
            f"policyscan: {len(result.problems)} problem(s) met while scanning: "
            "run `policyscan` to see them",
            err=True,
        )


def _fields(settings: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def _emit(pieces: Iterable[str], output: str | None) -> None:
    """Writes the report's pieces as they are made (report.chunks)."""
    if output:
        try:
            with open(output, "w", encoding="utf-8", newline="\n") as handle:
                for piece in pieces:
                    handle.write(piece)
        except OSError as exc:
            from policyscan.errors import UsageError

            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    else:
        try:
            for text in _batched(pieces):
                click.echo(text, nl=False)
        except BrokenPipeError:
            # `policyscan . | head`: the reader has what it wanted, and the exit code still
            # says what was found. What is left to write goes nowhere (Python's own advice).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError as exc:  # a full disk: as -o FILE says it
            from policyscan.errors import UsageError

            raise UsageError(f"cannot write standard output: {exc.strerror}") from None


def _batched(pieces: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """The pieces joined into runs of about ``size`` characters: click.echo flushes each call,
    and a report of 10,000 files comes in thousands of small pieces."""
    run: list[str] = []
    length = 0
    for piece in pieces:
        run.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(run)
            run, length = [], 0
    if run:
        yield "".join(run)


def _exit_code(result: Any, fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_OK
    from policyscan.model import Severity

    threshold = Severity(fail_on).rank
    failing = any(f.suppressed is None and f.severity.rank >= threshold for f in result.findings)
    return EXIT_FINDINGS if failing else EXIT_OK


@cli.command()
@click.option("--format", "-f", "fmt", type=click.Choice(("text", "json")), default="text")
@_policies_option
def rules(fmt: str, policy_dirs: tuple[str, ...]) -> None:
    """List the rules with their severity and checklist ids."""
    import json

    from policyscan.policy.docs import short_description
    from policyscan.policy.loader import load_policies

    loaded = load_policies(policy_dirs)
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.value,
                        "scope": r.scope,
                        "artifacts": sorted(a.value for a in r.artifacts),
                        "checklist": list(r.checklist),
                        "description": short_description(r),
                        "builtin": r.builtin,
                    }
                    for r in loaded
                ],
                indent=2,
            )
        )
        return
    for r in loaded:
        kinds = ",".join(sorted(a.value for a in r.artifacts))
        click.echo(
            f"{r.id:<8} {r.severity.value:<8} {r.name:<44} {kinds:<28} {' '.join(r.checklist)}"
        )


@cli.command()
@click.argument("rule_id")
@_policies_option
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


# Set by console(), which leaves with os._exit right after main(): what a scan made is kept
# to the end rather than freed object by object when the command's function returns (0.1 s for
# 10,000 files). None for main() called as a library or by tests.
_KEPT: list[object] | None = None


def console() -> None:
    """The ``policyscan`` command: main() with the cyclic garbage collector off, then leave
    without tearing the interpreter down. A scan of a large tree makes millions of objects that
    live until the process ends and are not in cycles: the collector would walk them all,
    several times, to free nothing (seconds for 10,000 files), and an orderly exit would free
    them one by one, for nothing; everything worth keeping is written by then."""
    global _KEPT
    gc.disable()
    _KEPT = []
    code = main()
    last_words = ""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `policyscan . | head`: the reader has what it wanted
        pass
    except OSError as exc:  # a full disk: the report is incomplete, as `-o FILE` would say
        last_words = f"policyscan: error: cannot write standard output: {exc.strerror}\n"
        code = EXIT_USAGE
    with contextlib.suppress(OSError):  # nowhere left to say it
        sys.stderr.write(last_words)
        sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every outcome becomes an exit code (no traceback unless POLICYSCAN_DEBUG)."""
    from policyscan.errors import PolicyscanError

    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="policyscan",
            standalone_mode=False,
        )
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
    except Exception as exc:
        if os.environ.get("POLICYSCAN_DEBUG"):
            raise
        click.echo(f"policyscan: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo(
            "policyscan: set POLICYSCAN_DEBUG=1 for the traceback, and please report it", err=True
        )
        return EXIT_INTERNAL
    return EXIT_OK


@cli.group("cache")
def cache_group() -> None:
    """The scan cache (.policyscan_cache/ in the scanned root)."""


@cache_group.command("clear")
@click.argument("path", required=False, default=".", type=click.Path(file_okay=False))
def cache_clear(path: str) -> None:
    """Delete the cache of PATH [default: the current directory]: PATH/.policyscan_cache, and
    that of the directory a scan of PATH is rooted at (the configuration file's directory, or
    for a pre-commit run the repository's top)."""
    from policyscan.cache import clear
    from policyscan.config import find_config
    from policyscan.selection import inside, repository_top

    start = os.path.abspath(path)
    roots = [start]
    found = find_config(start)
    if found:
        roots.append(os.path.dirname(os.path.abspath(found)))
    top = repository_top(start)
    if top is not None:
        roots.append(top)
    removed = [d for r in dict.fromkeys(roots) if inside(start, r) and (d := clear(r))]
    for directory in removed:
        click.echo(f"policyscan: removed {directory}", err=True)
    if not removed:
        click.echo(f"policyscan: no cache for {start}", err=True)


CHECKLIST_FORMATS = ("text", "markdown", "json", "html")


@cli.command("checklist")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(CHECKLIST_FORMATS),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="PERCENT",
    help="Exit 1 when readiness (met / applicable items) is under PERCENT.",
)
@click.option(
    "--section",
    "section_name",
    default=None,
    metavar="NAME",
    help="Show one section (a title such as Security, or a part such as "
    "'Deployment Execution'); readiness and --fail-under then cover it alone.",
)
@_policies_option
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Configuration file [default: .policyscan.yaml or pyproject.toml, searched upward].",
)
@click.option("--no-color", is_flag=True, help="No ANSI colour (also NO_COLOR=1).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the cache (.policyscan_cache/ in the scanned root).",
)
def checklist_command(
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    fail_under: float | None,
    section_name: str | None,
    policy_dirs: tuple[str, ...],
    config_file: str | None,
    no_color: bool,
    no_cache: bool,
) -> None:
    """The production deployment checklist for PATHS, filled in from the files: each item met
    (with its evidence), unmet (with its findings), not determinable, or manual."""
    from policyscan import readiness
    from policyscan.plan import Settings, make_plan

    # The same plan as `policyscan scan` (configuration, environments, excludes, ignores), so
    # the checklist and the scan agree; but no baseline: readiness is about what is there, not
    # about what is new.
    plan = make_plan(
        Settings(paths=paths, config=config_file, policy_dirs=policy_dirs, use_baseline=False)
    )
    result = _run(plan, cache=not no_cache, evidence=True)
    filled = readiness.evaluate(result, plan.rules, section=section_name)
    options = readiness.RenderOptions(
        color=_color(no_color, output), link_prefix=readiness.link_prefix_for(result.root, output)
    )
    _emit([readiness.render(fmt, filled, options)], output)
    if fail_under is not None and filled.tally.below(fail_under):
        t = filled.tally
        click.echo(
            f"policyscan: readiness {readiness.format_percent(t.percent)} ({t.met} of "
            f"{t.applicable} applicable items met) is under --fail-under {fail_under:g}%",
            err=True,
        )
        raise SystemExit(EXIT_FINDINGS)
    raise SystemExit(EXIT_OK)
