"""Pydantic models of a policy file, after its JSON Schema has accepted it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Docs(_Strict):
    what: str
    why: str
    fix: str
    references: tuple[str, ...] = ()


class Expected(_Strict):
    file: str
    line: int


class FailExample(_Strict):
    files: dict[str, str]
    expect: tuple[Expected, ...]
    description: str = ""


class PassExample(_Strict):
    files: dict[str, str]
    description: str = ""


class Examples(_Strict):
    fail: tuple[FailExample, ...]
    pass_: tuple[PassExample, ...] = Field(alias="pass")


class PolicyModel(_Strict):
    id: str
    name: str
    scope: str
    artifacts: tuple[Literal["compose", "env", "terraform", "dockerfile", "nginx"], ...]
    environments: tuple[Literal["production", "development", "unknown"], ...] = (
        "production",
        "development",
        "unknown",
    )
    templates: bool = False
    severity: Literal["critical", "high", "medium", "low", "info"]
    confidence: Literal["high", "medium", "low"]
    checklist: tuple[str, ...]
    tags: tuple[str, ...] = ()
    message: str
    docs: Docs
    where: dict[str, Any] | None = None
    assert_: dict[str, Any] = Field(alias="assert")
    examples: Examples
