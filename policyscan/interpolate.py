"""docker compose variable interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?err}``, ``${VAR:+alt}``, ``$VAR`` and ``$$``, as the compose specification defines them.
A variable that nothing in the repository defines is unknown: the shell may set it at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class Interpolated:
    text: str | None  # None when some part cannot be known statically
    references: list[tuple[str, bool]] = field(default_factory=list)  # (name, has a default)
    substituted: bool = False


def _name_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return end


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate(text: str, env: Mapping[str, str], _depth: int = 0) -> Interpolated:
    if "$" not in text:
        return Interpolated(text)
    result = Interpolated("")
    out: list[str] = []
    known = True
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            close = _closing_brace(text, i + 2)
            if close < 0:
                out.append(text[i:])
                break
            inner = text[i + 2 : close]
            i = close + 1
            name_end = _name_end(inner, 0)
            name, rest = inner[:name_end], inner[name_end:]
            value, has_default, ok = _expand(name, rest, env, _depth, result)
            result.references.append((name, has_default))
            result.substituted = True
            if not ok:
                known = False
            else:
                out.append(value)
            continue
        end = _name_end(text, i + 1)
        if end == i + 1:
            out.append(char)
            i += 1
            continue
        name = text[i + 1 : end]
        i = end
        result.references.append((name, False))
        result.substituted = True
        if name in env:
            out.append(env[name])
        else:
            known = False
    result.text = "".join(out) if known else None
    return result


def _expand(
    name: str, rest: str, env: Mapping[str, str], depth: int, result: Interpolated
) -> tuple[str, bool, bool]:
    """(value, has a default, known) of one ``${...}``."""
    if not rest:
        return env.get(name, ""), False, name in env
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            if depth < 5 and "$" in arg:
                nested = interpolate(arg, env, depth + 1)
                result.references.extend(nested.references)
                if nested.text is None:
                    return "", True, False
                arg = nested.text
            value = env.get(name)
            empty = value is None or (op.startswith(":") and value == "")
            if op in (":-", "-"):
                return (
                    (arg, True, True)
                    if (value is None if op == "-" else empty)
                    else (value or "", True, True)
                )
            if op in (":?", "?"):
                # Compose refuses to start without it: the value must come from the deployment.
                return (value or "", False, value is not None)
            return ("" if empty else arg, True, True)
    return "", False, False
