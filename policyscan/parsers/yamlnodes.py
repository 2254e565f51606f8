"""YAML nodes to located Values, with anchors, aliases and ``<<`` merge keys resolved.

PyYAML's ``compose`` keeps every node's marks; its constructor would drop them. Resolution follows
YAML 1.1 (what PyYAML implements): ``yes``/``on`` are booleans. The raw scalar text is kept too,
because compose reads some scalars as strings (``5432:5432`` is a base-60 integer in YAML 1.1).
"""

from __future__ import annotations

from sys import intern

import yaml

from policyscan.model import Problem, Scalar, Span, Value

try:  # The C loader is four times faster; pure Python is the fallback where libyaml is absent.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_NODES = 250_000
MAX_DEPTH = 200
_MAX_INT_CHARS = 256  # 0x + 254 hex digits stays under float's 1024 bits

_BOOL = {
    "yes": True,
    "true": True,
    "on": True,
    "y": True,
    "no": False,
    "false": False,
    "off": False,
    "n": False,
}


class _TooBig(Exception):
    pass


def _span(node: yaml.Node) -> Span:
    # Equal spans recur across files and within them: one shared object per position is far
    # cheaper than building a frozen dataclass for every node. Spans are immutable, so sharing
    # one is invisible.
    start, end = node.start_mark, node.end_mark
    key = (start.line, start.column, end.line, end.column)
    span = _SPANS.get(key)
    if span is None:
        span = Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)
        if len(_SPANS) >= _SPAN_CACHE_SIZE:
            _SPANS.clear()  # bounded: a scan of huge files must not keep every position
        _SPANS[key] = span
    return span


_SPANS: dict[tuple[int, int, int, int], Span] = {}
_SPAN_CACHE_SIZE = 1 << 16
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


def _scalar(node: yaml.ScalarNode) -> Scalar:
    tag: str = node.tag
    text: str = node.value
    if tag == _STR:  # most scalars: nothing to resolve
        return text
    try:
        if tag == "tag:yaml.org,2002:bool":
            return _BOOL.get(text.lower(), text)
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:int":
            cleaned = text.replace("_", "")
            if ":" in cleaned:
                return text  # base 60: keep the text, as compose would
            if len(cleaned) > _MAX_INT_CHARS:
                # Beyond a float's range a number is only text to a rule (and str() of a
                # huge int raises ValueError); the octal fallback has no digit limit.
                return text
            try:
                return int(cleaned, 0)
            except ValueError:
                return int(cleaned, 8)  # YAML 1.1 reads a leading 0 as octal
        if tag == "tag:yaml.org,2002:float":
            return float(text.replace("_", "")) if ":" not in text else text
    except ValueError:
        return text
    return text


# Compose's merge tags (`ports: !reset []`, `environment: !override {...}`): what an override
# file removes or replaces instead of merging. Other local tags are read as untagged.
MERGE_TAGS = frozenset({"!reset", "!override"})


class _Converter:
    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self.tagged: list[tuple[Value, str]] = []

    def convert(self, node: yaml.Node, depth: int = 0) -> Value:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(f"document expands to more than {MAX_NODES} nodes (YAML aliases?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nesting deeper than {MAX_DEPTH} levels")
        span = _span(node)
        path = self.path
        if isinstance(node, yaml.ScalarNode):
            value = Value(_scalar(node), path, span, text=node.value)
            if node.tag in MERGE_TAGS:
                self.tagged.append((value, node.tag))
            return value
        # Most children are scalars: those are converted in the loops below, as convert() would
        # (counted the same), without a call each. Only one that would pass a limit goes through
        # convert(), which raises.
        deeper = depth + 1
        leaf_ok = deeper <= MAX_DEPTH
        if isinstance(node, yaml.SequenceNode):
            items = []
            for item in node.value:
                if leaf_ok and isinstance(item, yaml.ScalarNode) and self.count < MAX_NODES:
                    self.count += 1
                    items.append(Value(_scalar(item), path, _span(item), text=item.value))
                    if item.tag in MERGE_TAGS:
                        self.tagged.append((items[-1], item.tag))
                else:
                    items.append(self.convert(item, deeper))
            return self._tag(node, Value(items, path, span))
        entries: dict[str, Value] = {}
        merged: dict[str, Value] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        for k, v in self.convert(source, deeper).items():
                            merged.setdefault(k, v)
                continue
            # Interned: the same keys (image, environment, ports...) recur in every file.
            key = (
                intern(key_node.value)
                if isinstance(key_node, yaml.ScalarNode)
                else str(_span(key_node))
            )
            if leaf_ok and isinstance(value_node, yaml.ScalarNode) and self.count < MAX_NODES:
                self.count += 1
                value = Value(_scalar(value_node), path, _span(value_node), text=value_node.value)
                if value_node.tag in MERGE_TAGS:
                    self.tagged.append((value, value_node.tag))
            else:
                value = self.convert(value_node, deeper)
            value.key_span = _span(key_node)
            entries[key] = value
        for key, value in merged.items():
            entries.setdefault(key, value)
        return self._tag(node, Value(entries, path, span))

    def _tag(self, node: yaml.Node, value: Value) -> Value:
        if node.tag in MERGE_TAGS:
            self.tagged.append((value, node.tag))
        return value


def load(path: str, text: str) -> tuple[Value | None, list[Problem]]:
    """The first YAML document of ``text`` as a Value, or the problem that stopped it."""
    root, problems, _ = load_tagged(path, text)
    return root, problems


def load_tagged(
    path: str, text: str
) -> tuple[Value | None, list[Problem], list[tuple[Value, str]]]:
    """``load``, and the values tagged with one of MERGE_TAGS, with their tag."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        col = mark.column + 1 if mark is not None else 1
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return (
            None,
            [Problem(path, Span(line, col, line, col + 1), f"YAML syntax error: {message}")],
            [],
        )
    except yaml.YAMLError as exc:
        return None, [Problem(path, Span.line(1), f"YAML error: {exc}")], []
    if node is None:
        return None, [], []
    converter = _Converter(path)
    try:
        return converter.convert(node), [], converter.tagged
    except (_TooBig, RecursionError) as exc:
        message = str(exc) or "nesting too deep"
        return None, [Problem(path, _span(node), f"not scanned: {message}", "too-complex")], []
