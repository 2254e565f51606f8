"""Terraform (HCL) through tree-sitter-hcl: every block and attribute located, expressions kept.

Literals become known Values. Anything else (references, function calls, conditionals, ``for``)
stays an unknown Value whose ``text`` is the expression's source, so the project view can later
resolve ``var.x`` and ``local.x``, and a rule never mistakes a computed value for a literal.
python-hcl2 is 17-40x slower on real files (see docs/design); tests cross-check against it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import tree_sitter
import tree_sitter_hcl

from policyscan.model import Artifact, Problem, Scalar, Span, Value
from policyscan.parsers import yamlnodes

MAX_DEPTH = 200
_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_hcl.language()))


@dataclass(slots=True)
class Block:
    type: str
    labels: tuple[str, ...]
    span: Span
    body: Value
    path: str

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
    (sl, sc), (el, ec) = node.start_point, node.end_point
    return Span(sl + 1, sc + 1, el + 1, ec + 1)


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


class _Converter:
    def __init__(self, path: str) -> None:
        self.path = path

    def unknown(self, node: tree_sitter.Node) -> Value:
        return Value(None, self.path, _span(node), known=False, literal=False, text=_text(node))

    def expression(self, node: tree_sitter.Node, depth: int) -> Value:
        if depth > MAX_DEPTH:
            return self.unknown(node)
        children = node.named_children
        if node.type == "expression" and len(children) == 1:
            return self.expression(children[0], depth + 1)
        kind = node.type
        if kind == "literal_value" and children:
            return self.literal(children[0])
        if kind == "template_expr" and children:
            return self.template(children[0], node)
        if kind == "collection_value" and children:
            return self.collection(children[0], depth)
        if kind == "operation" and children and children[0].type == "unary_operation":
            inner = children[0]
            operand = inner.named_children[0] if inner.named_children else None
            sign = _text(inner)[:1]
            if operand is not None and operand.type == "literal_value" and sign == "-":
                value = self.literal(operand.named_children[0]) if operand.named_children else None
                if (
                    value is not None
                    and isinstance(value.data, int | float)
                    and not isinstance(value.data, bool)
                ):
                    return Value(-value.data, self.path, _span(node), text=_text(node))
        return self.unknown(node)

    def literal(self, node: tree_sitter.Node) -> Value:
        text = _text(node)
        span = _span(node)
        data: Scalar
        if node.type == "numeric_lit":
            try:
                data = int(text)
            except ValueError:
                try:
                    data = float(text)
                except ValueError:
                    data = text
        elif node.type == "bool_lit":
            data = text == "true"
        elif node.type == "null_lit":
            data = None
        elif node.type == "string_lit":
            parts = [c for c in node.named_children if c.type == "template_literal"]
            data = "".join(_unescape(_text(p)) for p in parts)
        else:
            return Value(None, self.path, span, known=False, literal=False, text=text)
        return Value(data, self.path, span, text=text)

    def template(self, node: tree_sitter.Node, outer: tree_sitter.Node) -> Value:
        if any(
            c.type in ("template_interpolation", "template_directive") for c in node.named_children
        ):
            return self.unknown(outer)
        if node.type == "heredoc_template":
            lines = _text(node).split("\n")
            strip = lines[0].startswith("<<-")
            body = "\n".join(lines[1:-1]) + ("\n" if len(lines) > 2 else "")
            data = textwrap.dedent(body) if strip else body
            return Value(data, self.path, _span(outer), text=_text(outer))
        parts = [c for c in node.named_children if c.type == "template_literal"]
        return Value(
            "".join(_unescape(_text(p)) for p in parts), self.path, _span(outer), text=_text(outer)
        )

    def collection(self, node: tree_sitter.Node, depth: int) -> Value:
        span = _span(node)
        if node.type == "tuple":
            items = [
                self.expression(c, depth + 1) for c in node.named_children if c.type == "expression"
            ]
            return Value(items, self.path, span)
        entries: dict[str, Value] = {}
        for elem in node.named_children:
            if elem.type != "object_elem":
                continue
            exprs = [c for c in elem.named_children if c.type == "expression"]
            if len(exprs) != 2:
                continue
            key_value = self.expression(exprs[0], depth + 1)
            key = (
                key_value.data
                if key_value.known and isinstance(key_value.data, str)
                else _text(exprs[0])
            )
            value = self.expression(exprs[1], depth + 1)
            value.key_span = _span(exprs[0])
            entries[str(key)] = value
        return Value(entries, self.path, span)

    def body(
        self, node: tree_sitter.Node | None, span: Span, depth: int, blocks_out: list[Block] | None
    ) -> Value:
        entries: dict[str, Value] = {}
        if node is None:
            return Value(entries, self.path, span)
        for child in node.named_children:
            if child.type == "attribute":
                ident = child.child_by_field_name("name") or child.named_children[0]
                exprs = [c for c in child.named_children if c.type == "expression"]
                if not exprs:
                    continue
                value = self.expression(exprs[0], depth + 1)
                value.key_span = _span(ident)
                entries[_text(ident)] = value
            elif child.type == "block":
                block = self.block(child, depth + 1)
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
                bucket = entries.setdefault(name, Value([], self.path, block.span))
                if isinstance(bucket.data, list):
                    bucket.data.append(body)
        return Value(entries, self.path, span)

    def block(self, node: tree_sitter.Node, depth: int) -> Block | None:
        if depth > MAX_DEPTH:
            return None
        children = node.named_children
        if not children:
            return None
        kind = _text(children[0])
        labels = []
        body_node = None
        for child in children[1:]:
            if child.type == "string_lit":
                labels.append(
                    "".join(_text(p) for p in child.named_children if p.type == "template_literal")
                )
            elif child.type == "identifier":
                labels.append(_text(child))
            elif child.type == "body":
                body_node = child
        span = _span(node)
        return Block(kind, tuple(labels), span, self.body(body_node, span, depth, None), self.path)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            out.append(escapes[text[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _errors(root: tree_sitter.Node, path: str, limit: int = 5) -> list[Problem]:
    problems: list[Problem] = []
    stack = [root]
    while stack and len(problems) < limit:
        node = stack.pop()
        if not node.has_error:
            continue
        if node.is_error or node.is_missing:
            what = f"missing {node.type}" if node.is_missing else "unexpected input"
            problems.append(Problem(path, _span(node), f"HCL syntax error: {what}"))
            continue
        stack.extend(reversed(node.children))
    if root.has_error and not problems:
        problems.append(Problem(path, _span(root), "HCL syntax error"))
    return problems


def parse(artifact: Artifact, text: str) -> TerraformDocument:
    doc = TerraformDocument(artifact)
    if artifact.path.endswith(".json"):
        return _parse_json(doc, text)
    tree = _PARSER.parse(text.encode("utf-8"))
    root = tree.root_node
    if root.has_error:
        doc.problems.extend(_errors(root, artifact.path))
    converter = _Converter(artifact.path)
    for body in root.named_children:
        if body.type != "body":
            continue
        blocks: list[Block] = []
        top = converter.body(body, _span(body), 0, blocks)
        doc.blocks.extend(blocks)
        assert isinstance(top.data, dict)
        doc.attributes.update(top.data)
    return doc


def _parse_json(doc: TerraformDocument, text: str) -> TerraformDocument:
    """``*.tf.json``: JSON is YAML, so the YAML reader gives located nodes for free."""
    root, problems = yamlnodes.load(doc.artifact.path, text)
    doc.problems.extend(problems)
    if root is None or not isinstance(root.data, dict):
        return doc
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
