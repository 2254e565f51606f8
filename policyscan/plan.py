"""From command-line options and the configuration file to what one run does: the rules, the
files, the root paths are relative to, the baseline and the exit threshold.

Precedence: a command-line option wins over the file, the file over the defaults. ``--select``
replaces the file's ``select``; ``--ignore``, ``--policies`` and ``--exclude`` add to the file's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policyscan.config import (
    Config,
    apply_rule_settings,
    find_config,
    load_config,
    resolve_rule_ids,
)
from policyscan.errors import UsageError
from policyscan.policy.loader import Rule
from policyscan.selection import inside

if TYPE_CHECKING:
    from policyscan.scan import ScanOptions

BASELINE_NAME = ".policyscan-baseline.json"


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line said; empty values mean "not given"."""

    paths: tuple[str, ...] = ()
    config: str | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    policy_dirs: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    fail_on: str | None = None
    max_file_size: int | None = None
    baseline: str | None = None
    changed_since: str | None = None
    warn_unused_ignores: bool = False
    # The baseline command names the file it writes (its directory anchors the root) but must
    # not hide the findings it is recording.
    use_baseline: bool = True


@dataclass(slots=True)
class Plan:
    rules: list[Rule]  # the rules to run, with the file's overrides
    known: list[Rule]  # every loaded rule (ignore comments may name any of them)
    config: Config
    root: str
    paths: tuple[str, ...]
    only: frozenset[str] | None
    fail_on: str
    baseline_path: str | None
    exclude: tuple[str, ...]
    max_bytes: int | None
    warn_unused: bool
    nothing_to_scan: bool = False

    def scan_options(self, progress: Callable[[int, int], None] | None = None) -> ScanOptions:
        from policyscan.discover import DEFAULT_MAX_BYTES, DiscoveryOptions
        from policyscan.scan import ScanOptions
        from policyscan.suppress import SuppressOptions, load_baseline

        config = self.config
        aliases = {r.id: r.id for r in self.known} | {r.name: r.id for r in self.known}
        suppression = SuppressOptions(
            aliases=aliases,
            warn_unused=self.warn_unused,
            per_path_ignores=config.per_path_ignores,
            per_path_base=config.directory,
            baseline=load_baseline(self.baseline_path) if self.baseline_path else None,
        )
        discovery = DiscoveryOptions(
            exclude=self.exclude,
            max_bytes=self.max_bytes or DEFAULT_MAX_BYTES,
            respect_gitignore=config.respect_gitignore,
            production_globs=config.production,
            development_globs=config.development,
        )
        return ScanOptions(
            paths=self.paths,
            root=self.root,
            discovery=discovery,
            only=self.only,
            suppression=suppression,
            progress=progress,
        )


def split_ids(values: Sequence[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _check_known(rules: Sequence[Rule], ids: Sequence[str]) -> None:
    known = {r.id for r in rules} | {r.name for r in rules}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(f"unknown rule id: {', '.join(unknown)} (see `policyscan rules`)")


def make_plan(settings: Settings) -> Plan:
    from policyscan.policy.engine import select_rules
    from policyscan.policy.loader import load_policies
    from policyscan.scan import common_root
    from policyscan.selection import changed_files, project_root, relposix, repository_top

    named: list[str] = []
    nothing = False
    if settings.changed_since is not None:
        scope = settings.paths or (".",)
        common_root(scope)  # a path that does not exist is a usage error, as in any scan
        start = scope[0] if os.path.isdir(scope[0]) else os.path.dirname(os.path.abspath(scope[0]))
        top, changed = changed_files(settings.changed_since, start)
        named = [f for f in changed if any(inside(f, p) for p in scope)]
        nothing = not named
        paths: tuple[str, ...] = tuple(named) or (top,)
        common = top
    else:
        paths = settings.paths or (".",)
        common = common_root(paths)
        if all(os.path.isfile(p) for p in paths):
            named = list(paths)

    config = load_config(settings.config) if settings.config else None
    if config is None:
        found = find_config(common)
        config = load_config(found) if found else Config()

    baseline_path = os.path.abspath(settings.baseline) if settings.baseline else config.baseline
    anchors = [config.directory, os.path.dirname(baseline_path) if baseline_path else None]
    root = project_root(paths, common, anchors, bool(named) or settings.changed_since is not None)

    known = load_policies([*config.policies, *settings.policy_dirs])
    config = resolve_rule_ids(config, known)
    cli_select, cli_ignore = split_ids(settings.select), split_ids(settings.ignore)
    _check_known(known, cli_select + cli_ignore)
    adjusted = apply_rule_settings(config, known)
    chosen = select_rules(
        adjusted, cli_select or list(config.select), [*config.ignore, *cli_ignore]
    )

    only = None
    scan_paths = paths
    if named:
        only = frozenset(relposix(f, root) for f in named)
        # The whole project is read so that each named file is judged as in a full scan (see
        # policyscan/selection.py); the named files are listed too in case .gitignore hides them.
        # A root above the repository (a configuration or baseline file there) adds no context.
        repo_top = repository_top(common)
        project = repo_top if repo_top is not None and inside(repo_top, root) else root
        scan_paths = (project, *named)
    return Plan(
        rules=chosen,
        known=known,
        config=config,
        root=root,
        paths=scan_paths,
        only=only,
        fail_on=settings.fail_on or config.fail_on or "low",
        baseline_path=baseline_path if settings.use_baseline else None,
        exclude=(*config.exclude, *settings.exclude),
        max_bytes=settings.max_file_size or config.max_file_size,
        warn_unused=settings.warn_unused_ignores or config.warn_unused_ignores,
        nothing_to_scan=nothing,
    )


def default_baseline_path(settings: Settings) -> str:
    """Where ``policyscan baseline`` writes without ``-o``: the file named by the configuration,
    else ``.policyscan-baseline.json`` beside the configuration file, else in the current
    directory."""
    config_path = settings.config or find_config(os.path.abspath(_first_dir(settings.paths)))
    if config_path:
        config = load_config(config_path)
        if config.baseline:
            return config.baseline
        return os.path.join(os.path.dirname(os.path.abspath(config_path)), BASELINE_NAME)
    return os.path.abspath(BASELINE_NAME)


def _first_dir(paths: Sequence[str]) -> str:
    if not paths:
        return "."
    first = paths[0]
    return first if os.path.isdir(first) else os.path.dirname(os.path.abspath(first))
