"""Terraform (HCL) through tree-sitter-hcl: every block and attribute located, expressions kept.

Literals become known Values. Anything else (references, function calls, conditionals, ``for``)
stays an unknown Value whose ``text`` is the expression's source, so the project view can later
resolve ``var.x`` and ``local.x``, and a rule never mistakes a computed value for a literal.
python-hcl2 is 17-40x slower on real files (see docs/design); tests cross-check against it.
"""

from __future__ import annotations

import re
import textwrap
import time
from dataclasses import dataclass, field
from sys import intern

import tree_sitter
import tree_sitter_hcl

from policyscan.model import Artifact, Problem, Scalar, Span, Value
from policyscan.parsers import yamlnodes

MAX_DEPTH = 200
# tree-sitter-hcl's scanner rescans a run of whitespace from each of its characters inside an
# expression, so a run of n costs n*n: past this sum of squared run lengths (one 8K run, or
# 1 MB of 64-character runs) the file is reported instead of parsed. Real files stay far below.
MAX_WHITESPACE_WORK = 1 << 26
# The lookbehind starts a match only at a run's first character: one pass, no retries.
_LONG_WHITESPACE = re.compile(r"(?<![ \t\n\r\v\f])[ \t\n\r\v\f]{64,}")
# The pattern costs a regex step per character (0.2 s of a 4 s parse of 5,000 files), and
# almost no file holds such a run: a byte translation that turns those six characters into
# spaces and all else into "x", then a substring search, both at memory speed, tell which files
# need the pattern at all. UTF-8 encodes the six as themselves, and no byte of a multi-byte
# character is one of them.
_WHITESPACE_BYTES = bytes(0x20 if b in b" \t\n\r\v\f" else 0x78 for b in range(256))
_WHITESPACE_RUN = b" " * 64
_LANGUAGE = tree_sitter.Language(tree_sitter_hcl.language())
# The last resort for what the check above does not foresee: tree-sitter-hcl is quadratic on
# other broken input too (thousands of lines that each hold a stray quote). A parse still
# running after this long is abandoned and reported; real files take milliseconds per megabyte,
# so only such input gets near it (and only then can the outcome depend on the machine).
PARSE_SECONDS = 20.0
_PARSER = tree_sitter.Parser(_LANGUAGE)
# What the read callback hands the parser. py-tree-sitter (0.26.1) keeps a reference to every
# object the callback returns and never lets it go, and a file's first chunk is the file's own
# bytes object (a slice of all of a bytes is the bytes itself): every Terraform file's bytes
# stayed alive to the end of the scan (17 MB at 5,000 files). Handing back this one buffer,
# refilled on each call, leaks only references to it. The binding lets go of its view of the
# buffer before each call and after the parse, so refilling it is allowed.
_CHUNK = bytearray()


def reference(text: str) -> tuple[str, str] | None:
    """``("var", name)`` or ``("local", name)`` when the expression ``text`` is exactly a
    reference the project view resolves (``var.x``, ``local.x``), else None."""
    text = text.strip()
    if text.startswith("var.") and text[4:].isidentifier():
        return "var", text[4:]
    if text.startswith("local.") and text[6:].replace("-", "_").isidentifier():
        return "local", text[6:]
    return None


@dataclass(slots=True)
class Block:
    type: str
    labels: tuple[str, ...]
    span: Span
    body: Value
    path: str
    # False when the parser saw in the body no expression that is a ``var.``/``local.``
    # reference (``reference``): the project view then has nothing to resolve in it and skips
    # the walk (two blocks in three of a generated tree, 93% of the corpus's; the walk was most
    # of the cost of building Terraform subjects). True (walk) otherwise, and for blocks made
    # elsewhere.
    references: bool = True

    @property
    def address(self) -> str:
        """``aws_s3_bucket.media`` for resources, ``var.x`` style names for the rest."""
        if self.type == "resource" and len(self.labels) >= 2:
            return f"{self.labels[0]}.{self.labels[1]}"
        if self.type == "data" and len(self.labels) >= 2:
            return f"data.{self.labels[0]}.{self.labels[1]}"
        return ".".join((self.type, *self.labels))


@dataclass(slots=True)
class TerraformDocument:
    artifact: Artifact
    blocks: list[Block] = field(default_factory=list)
    attributes: dict[str, Value] = field(default_factory=dict)  # top level: *.tfvars
    problems: list[Problem] = field(default_factory=list)


def _span(node: tree_sitter.Node) -> Span:
    # Equal spans recur across files and within them (``Span(3, 3, 3, 20)``): one shared object
    # per position is 5x cheaper than building a frozen dataclass each time (the hottest
    # allocation of a Terraform scan). Spans are immutable, so sharing one is invisible.
    key = (node.start_point, node.end_point)
    span = _SPANS.get(key)
    if span is None:
        (sl, sc), (el, ec) = key
        span = Span(sl + 1, sc + 1, el + 1, ec + 1)
        if len(_SPANS) >= _SPAN_CACHE_SIZE:
            _SPANS.clear()  # bounded: a scan of huge files must not keep every position
        _SPANS[key] = span
    return span


_SPANS: dict[tuple[tree_sitter.Point, tree_sitter.Point], Span] = {}
_SPAN_CACHE_SIZE = 1 << 16


# The grammar has no field called "name" (its fields are an object element's key and val), so
# an attribute's name is its first named child; asking for the field on every attribute would
# be a wasted call per attribute.
_NAME_FIELD = _LANGUAGE.field_id_for_name("name")
_NEGATIVE_OK = (int, float)


def _kind(name: str) -> int:
    kind = _LANGUAGE.id_for_node_kind(name, True)
    assert kind is not None, name
    return kind


# A node's kind_id is a small int, its type a new str at each asking: the walk compares ints.
_ATTRIBUTE = _kind("attribute")
_BLOCK = _kind("block")
_BODY = _kind("body")
_BOOL_LIT = _kind("bool_lit")
_COLLECTION_VALUE = _kind("collection_value")
_EXPRESSION = _kind("expression")
_HEREDOC_TEMPLATE = _kind("heredoc_template")
_IDENTIFIER = _kind("identifier")
_LITERAL_VALUE = _kind("literal_value")
_NULL_LIT = _kind("null_lit")
_NUMERIC_LIT = _kind("numeric_lit")
_OBJECT_ELEM = _kind("object_elem")
_OPERATION = _kind("operation")
_STRING_LIT = _kind("string_lit")
_TEMPLATE_DIRECTIVE = _kind("template_directive")
_TEMPLATE_EXPR = _kind("template_expr")
_TEMPLATE_INTERPOLATION = _kind("template_interpolation")
_TEMPLATE_LITERAL = _kind("template_literal")
_TUPLE = _kind("tuple")
_UNARY_OPERATION = _kind("unary_operation")


class _Converter:
    """Tree-sitter nodes to Values. The hot path of a Terraform scan: each node costs Python
    calls into the binding, and each Node object made costs more, so a node's kind and children
    are asked for once, a child is fetched alone when only it is needed, and text comes from
    slicing the source (``node.text`` copies the bytes out of the tree, and for an all-ASCII
    file byte offsets are character offsets, so no decoding either)."""

    def __init__(self, path: str, text: str = "", source: bytes = b"") -> None:
        self.path = path
        self.too_deep: Span | None = None  # where nesting first went past MAX_DEPTH
        self.references = False  # whether the block being read holds a reference (Block)
        self.source = source
        self.ascii_text = text if text.isascii() else None

    def _text(self, node: tree_sitter.Node) -> str:
        start, end = node.byte_range  # one call into the binding, not two
        if self.ascii_text is not None:
            return self.ascii_text[start:end]
        # Byte offsets into UTF-8 may split a character only at an error node: "replace",
        # as node.text.decode did.
        return self.source[start:end].decode("utf-8", "replace")

    def _plain_string(self, text: str, node: tree_sitter.Node) -> str | None:
        """The template_literal of a string_lit read from the string's own text, or None when
        only its children can tell. Most literals and labels of a file are such strings, and
        this spares making their three child nodes. An intact string is quote, template_literal,
        quote (the grammar's shape), and the literal is all the text between the quotes when
        that is on one line, printable, and without whitespace at either end (which the literal
        leaves out; no whitespace but the space is printable)."""
        if len(text) < 3 or text[0] != '"' or text[-1] != '"':
            return None
        inner = text[1:-1]
        if inner[0] == " " or inner[-1] == " " or not inner.isprintable() or node.has_error:
            return None
        return inner

    def _deep(self, node: tree_sitter.Node) -> None:
        if self.too_deep is None:
            self.too_deep = _span(node)

    def unknown(self, node: tree_sitter.Node) -> Value:
        # Interned, as are attribute names, block types and labels: a tree repeats them (the
        # public corpus's 38,766 attribute names are 1,801 strings, its 19,727 expressions
        # 3,925), and a string of its own for each was a third of the memory of its Terraform
        # documents. Literals, more often unique, are not (interning them cost more time).
        text = intern(self._text(node))
        if reference(text) is not None:
            self.references = True
        return Value(None, self.path, _span(node), False, False, text)

    def expression(self, node: tree_sitter.Node, depth: int) -> Value:
        # Every attribute's value is an ``expression`` around the node that says what it is: a
        # loop unwraps it (and any further nesting, one depth each) without a call per level.
        # Children are counted, and only a needed one fetched: ``var.x`` is an expression of
        # two nodes that stays unknown whatever they are.
        while True:
            if depth > MAX_DEPTH:
                self._deep(node)
                return self.unknown(node)
            kind = node.kind_id
            count = node.named_child_count
            if kind != _EXPRESSION or count != 1:
                break
            node = node.named_child(0)
            depth += 1
        if not count:
            return self.unknown(node)
        if kind == _LITERAL_VALUE:
            return self.literal(node.named_child(0))
        if kind == _TEMPLATE_EXPR:
            return self.template(node.named_child(0), node)
        if kind == _COLLECTION_VALUE:
            return self.collection(node.named_child(0), depth)
        if kind == _OPERATION:
            inner = node.named_child(0)
            if (
                inner.kind_id == _UNARY_OPERATION
                and inner.named_child_count
                and self._text(inner)[:1] == "-"
            ):
                operand = inner.named_child(0)
                if operand.kind_id == _LITERAL_VALUE and operand.named_child_count:
                    value = self.literal(operand.named_child(0))
                    if isinstance(value.data, _NEGATIVE_OK) and not isinstance(value.data, bool):
                        return Value(-value.data, self.path, _span(node), text=self._text(node))
        return self.unknown(node)

    def literal(self, node: tree_sitter.Node) -> Value:
        kind = node.kind_id
        text = self._text(node)
        span = _span(node)
        data: Scalar
        if kind == _STRING_LIT:
            inner = self._plain_string(text, node)
            if inner is not None:
                data = _unescape(inner)
            else:
                data = "".join(
                    _unescape(self._text(p))
                    for p in node.named_children
                    if p.kind_id == _TEMPLATE_LITERAL
                )
        elif kind == _NUMERIC_LIT:
            try:
                # A longer literal is past any float (a rule compares numbers as floats).
                data = int(text) if len(text) <= 256 else float(text)
            except ValueError:
                try:
                    data = float(text)
                except ValueError:
                    data = text
        elif kind == _BOOL_LIT:
            data = text == "true"
        elif kind == _NULL_LIT:
            data = None
        else:
            self.references = True  # an unknown value not made by unknown(): walked, to be safe
            return Value(None, self.path, span, False, False, text)
        return Value(data, self.path, span, text=text)

    def template(self, node: tree_sitter.Node, outer: tree_sitter.Node) -> Value:
        literals = []
        for part in node.named_children:
            kind = part.kind_id
            if kind == _TEMPLATE_LITERAL:
                literals.append(part)
            elif kind in (_TEMPLATE_INTERPOLATION, _TEMPLATE_DIRECTIVE):
                return self.unknown(outer)
        if node.kind_id == _HEREDOC_TEMPLATE:
            lines = self._text(node).split("\n")
            strip = lines[0].startswith("<<-")
            body = "\n".join(lines[1:-1]) + ("\n" if len(lines) > 2 else "")
            data = textwrap.dedent(body) if strip else body
            return Value(data, self.path, _span(outer), text=self._text(outer))
        return Value(
            "".join(_unescape(self._text(p)) for p in literals),
            self.path,
            _span(outer),
            text=self._text(outer),
        )

    def collection(self, node: tree_sitter.Node, depth: int) -> Value:
        span = _span(node)
        deeper = depth + 1
        expression = self.expression
        if node.kind_id == _TUPLE:
            items = [expression(c, deeper) for c in node.named_children if c.kind_id == _EXPRESSION]
            return Value(items, self.path, span)
        entries: dict[str, Value] = {}
        for elem in node.named_children:
            if elem.kind_id != _OBJECT_ELEM:
                continue
            exprs = [c for c in elem.named_children if c.kind_id == _EXPRESSION]
            if len(exprs) != 2:
                continue
            key_node = exprs[0]
            key_value = expression(key_node, deeper)
            key = (
                key_value.data
                if key_value.known and isinstance(key_value.data, str)
                else self._text(key_node)
            )
            value = expression(exprs[1], deeper)
            value.key_span = _span(key_node)
            entries[str(key)] = value
        return Value(entries, self.path, span)

    def body(
        self, node: tree_sitter.Node | None, span: Span, depth: int, blocks_out: list[Block] | None
    ) -> Value:
        entries: dict[str, Value] = {}
        path = self.path
        if node is None:
            return Value(entries, path, span)
        deeper = depth + 1
        for child in node.named_children:
            kind = child.kind_id
            if kind == _ATTRIBUTE:
                named = child.named_children
                ident = (
                    child.child_by_field_name("name") if _NAME_FIELD is not None else None
                ) or named[0]
                # ``name = expr``: the expression is the second child unless a comment sits
                # between them; only then are the children searched.
                if len(named) > 1 and named[1].kind_id == _EXPRESSION:
                    expr = named[1]
                else:
                    found = next((c for c in named if c.kind_id == _EXPRESSION), None)
                    if found is None:
                        continue
                    expr = found
                value = self.expression(expr, deeper)
                value.key_span = _span(ident)
                entries[intern(self._text(ident))] = value
            elif kind == _BLOCK:
                block = self.block(child, deeper)
                if block is None:
                    continue
                if blocks_out is not None:
                    blocks_out.append(block)
                    continue
                name = block.type
                body = block.body
                if name == "dynamic" and block.labels:
                    # The content of a dynamic block is known in shape, not in number.
                    name = block.labels[0]
                    content = body.get("content")
                    body = (
                        content.data[0]
                        if content is not None and isinstance(content.data, list) and content.data
                        else body
                    )
                    body.known = False
                bucket = entries.setdefault(name, Value([], path, block.span))
                if isinstance(bucket.data, list):
                    bucket.data.append(body)
        return Value(entries, path, span)

    def block(self, node: tree_sitter.Node, depth: int) -> Block | None:
        if depth > MAX_DEPTH:
            self._deep(node)
            return None
        children = node.named_children
        if not children:
            return None
        kind = intern(self._text(children[0]))
        labels = []
        body_node = None
        for child in children[1:]:
            child_type = child.kind_id
            if child_type == _STRING_LIT:
                label = self._plain_string(self._text(child), child)
                if label is None:
                    label = "".join(
                        self._text(p)
                        for p in child.named_children
                        if p.kind_id == _TEMPLATE_LITERAL
                    )
                labels.append(intern(label))
            elif child_type == _IDENTIFIER:
                labels.append(intern(self._text(child)))
            elif child_type == _BODY:
                body_node = child
        span = _span(node)
        # Nested blocks are parts of this one's body: what they reference, it does.
        outer, self.references = self.references, False
        body = self.body(body_node, span, depth, None)
        if node.has_error:
            # tree-sitter recovers from errors by guessing (``1e3`` becomes ``1`` and an attribute
            # ``e3``): nothing in a block it had to repair is trusted as a known value.
            _mark_unknown(body)
            self.references = True
        references = self.references
        self.references = outer or references
        return Block(kind, tuple(labels), span, body, self.path, references)


def _mark_unknown(value: Value) -> None:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current.data, dict):
            stack.extend(current.data.values())
        elif isinstance(current.data, list):
            stack.extend(current.data)
        else:
            current.known = False
            current.literal = False


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(text: str) -> str:
    """A quoted string's value by the HCL spec: backslash escapes (``\\u00e9`` too), and the
    template escapes ``$${`` and ``%%{`` that stand for a literal ``${`` and ``%{``."""
    if "\\" not in text and "$${" not in text and "%%{" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            width = 4 if nxt == "u" else 8 if nxt == "U" else 0
            digits = text[i + 2 : i + 2 + width]
            if (
                width
                and len(digits) == width
                and set(digits) <= _HEX
                and int(digits, 16) < 0x110000
            ):
                out.append(chr(int(digits, 16)))
                i += 2 + width
                continue
        if text.startswith(("$${", "%%{"), i):
            out.append(text[i + 1 : i + 3])
            i += 3
            continue
        out.append(char)
        i += 1
    return "".join(out)


# A missing closer is found at the end of the file; the line that matters is the opener's.
# node type -> (how many parents up the opener is, what was left open)
_CLOSERS = {
    "quoted_template_end": (1, "string"),
    "heredoc_identifier": (1, "heredoc"),
    "template_interpolation_end": (1, "interpolation ${...}"),
    "}": (2, "block or object"),
    "]": (2, "list"),
    ")": (1, "parenthesis"),
}


def _missing(node: tree_sitter.Node, path: str) -> Problem:
    up, what = _CLOSERS.get(node.type, (0, ""))
    opener: tree_sitter.Node | None = node
    for _ in range(up):
        opener = opener.parent if opener is not None else None
    if not up or opener is None or opener.start_point >= node.start_point:
        return Problem(path, _span(node), f"HCL syntax error: missing {node.type}")
    line, col = opener.start_point[0] + 1, opener.start_point[1] + 1
    return Problem(
        path,
        Span(line, col, line, col + 1),
        f"HCL syntax error: {what} opened here is never closed (missing {node.type})",
    )


def _errors(root: tree_sitter.Node, path: str, limit: int = 5) -> list[Problem]:
    problems: list[Problem] = []
    stack = [root]
    while stack and len(problems) < limit:
        node = stack.pop()
        if not node.has_error:
            continue
        if node.is_missing:
            problems.append(_missing(node, path))
            continue
        if node.is_error:
            problems.append(Problem(path, _span(node), "HCL syntax error: unexpected input"))
            continue
        stack.extend(reversed(node.children))
    if root.has_error and not problems:
        problems.append(Problem(path, _span(root), "HCL syntax error"))
    return problems


def parse(artifact: Artifact, text: str) -> TerraformDocument:
    doc = TerraformDocument(artifact)
    if artifact.path.endswith(".json"):
        return _parse_json(doc, text)
    work = 0
    # surrogatepass: the check must not raise where the original order of things did not.
    runs = (
        _LONG_WHITESPACE.finditer(text)
        if _WHITESPACE_RUN in text.encode("utf-8", "surrogatepass").translate(_WHITESPACE_BYTES)
        else ()
    )
    for run in runs:
        work += (run.end() - run.start()) ** 2
        if work > MAX_WHITESPACE_WORK:
            line = text.count("\n", 0, run.start()) + 1
            doc.problems.append(
                Problem(
                    artifact.path,
                    Span.line(line),
                    "not scanned: runs of whitespace too long for the HCL parser",
                    "too-complex",
                )
            )
            return doc
    source = text.encode("utf-8")
    deadline = time.monotonic() + PARSE_SECONDS

    def read(offset: int, _point: tuple[int, int]) -> bytearray:
        _CHUNK[:] = source[offset : offset + 65536]
        return _CHUNK

    try:
        tree = _PARSER.parse(
            read,
            progress_callback=lambda _offset, _error: time.monotonic() > deadline,
        )
    except ValueError:  # the progress callback cancelled it
        _PARSER.reset()  # or the next parse would resume this one
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(1),
                f"not scanned: the HCL parser did not finish in {PARSE_SECONDS:.0f} seconds",
                "too-complex",
            )
        )
        return doc
    root = tree.root_node
    if root.has_error:
        doc.problems.extend(_errors(root, artifact.path))
    converter = _Converter(artifact.path, text, source)
    for body in root.named_children:
        if body.type != "body":
            continue
        blocks: list[Block] = []
        top = converter.body(body, _span(body), 0, blocks)
        doc.blocks.extend(blocks)
        assert isinstance(top.data, dict)
        doc.attributes.update(top.data)
    if converter.too_deep is not None:
        line = converter.too_deep.start_line
        doc.problems.append(
            Problem(
                artifact.path,
                Span.line(line),
                f"nested deeper than {MAX_DEPTH} levels: the deeper part is not scanned",
                "too-complex",
                "warning",
            )
        )
    return doc


def _json_templates_unknown(value: Value) -> None:
    """In JSON syntax a string holding ``${...}`` is an expression, not a literal."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current.data, dict):
            stack.extend(current.data.values())
        elif isinstance(current.data, list):
            stack.extend(current.data)
        elif isinstance(current.data, str) and ("${" in current.data or "%{" in current.data):
            current.text = current.data
            current.data = None
            current.known = False
            current.literal = False


def _parse_json(doc: TerraformDocument, text: str) -> TerraformDocument:
    """``*.tf.json``: JSON is YAML, so the YAML reader gives located nodes for free."""
    root, problems = yamlnodes.load(doc.artifact.path, text)
    doc.problems.extend(problems)
    if root is None or not isinstance(root.data, dict):
        return doc
    _json_templates_unknown(root)
    if doc.artifact.path.endswith(".tfvars.json"):
        doc.attributes.update(root.data)
        return doc
    for kind, group in root.data.items():
        if not isinstance(group.data, dict):
            continue
        if kind in ("resource", "data"):
            for rtype, named in group.data.items():
                for name, body in named.items():
                    span = body.key_span or body.span
                    doc.blocks.append(Block(kind, (rtype, name), span, body, doc.artifact.path))
        else:
            for name, body in group.data.items():
                doc.blocks.append(
                    Block(kind, (name,), body.key_span or body.span, body, doc.artifact.path)
                )
    return doc
