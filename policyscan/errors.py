"""The errors that end a run before scanning, each mapped to an exit code by the CLI."""

from __future__ import annotations


class PolicyscanError(Exception):
    exit_code = 2


class UsageError(PolicyscanError):
    pass


class ConfigError(PolicyscanError):
    pass


class PolicyError(PolicyscanError):
    """A policy file that cannot be used: the message names the file, the rule and the key."""
