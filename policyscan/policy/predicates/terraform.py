"""Terraform (AWS provider) checks that need code: reading across resources of a module.

A Terraform resource is often configured by other resources that point at it (S3's split
``aws_s3_bucket_versioning``, a listener's ``load_balancer_arn``, a WAF association). These
predicates follow such references within the subject's module (one directory), the same scope
Terraform uses. Precision first: whenever a link cannot be decided statically (a reference
through a variable, a module call that receives the resource, a ``count``/``for_each`` whose
size is unknown, a ``dynamic`` block), the answer is None, never a finding.

Every predicate takes the subject's facts (the block body with ``var.x`` / ``local.x``
resolved), the subject (whose ``node`` is ``(TerraformModule, Block)``), the project and the
rule's ``args``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyscan.model import Related, Span, Value
from policyscan.policy.conditions import TRUE, UNKNOWN, Outcome, Predicate

if TYPE_CHECKING:
    from policyscan.parsers.terraform import Block
    from policyscan.project import Project, Subject, TerraformModule


# ------------------------------------------------------------------------------- helpers


def _node(subject: Subject) -> tuple[TerraformModule, Block] | None:
    node = subject.node
    if isinstance(node, tuple) and len(node) == 2:
        return node
    return None


def _rtype(block: Block) -> str:
    return block.labels[0] if block.labels else ""


def _header(block: Block) -> Value:
    """A Value placed on the block's first line, to blame or relate a whole block."""
    span = Span(block.span.start_line, block.span.start_col, block.span.start_line, 0)
    return Value(None, block.path, span)


def _related(block: Block, message: str) -> Related:
    return Related(_header(block).location, message)


def _attr(module: TerraformModule, block: Block, path: str) -> Value | None:
    """An attribute of a block other than the subject, resolved like the subject's facts.
    Also the way to read ``type`` and ``name`` attributes, which the subject's facts shadow
    with the block's labels."""
    value = block.body.lookup(path)
    if value is None:
        return None
    return module.resolve_tree(value)


def _known_str(value: Value | None) -> str | None:
    if value is None or not value.known or isinstance(value.data, dict | list):
        return None
    return value.as_str()


def _elements(value: Value | None) -> list[Value]:
    if value is None:
        return []
    if isinstance(value.data, list):
        return value.data
    return [value]


def _truth(value: Value | None) -> bool | None:
    """A boolean attribute: None when unknown; absent is None too (the caller knows the default)."""
    if value is None or not value.known:
        return None
    data = value.data
    if isinstance(data, bool):
        return data
    text = (value.as_str() or "").strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


def _number(value: Value | None) -> float | None:
    if value is None or not value.known or isinstance(value.data, bool):
        return None
    if isinstance(value.data, int | float):
        return float(value.data)
    try:
        return float(str(value.data).strip())
    except ValueError:
        return None


_COMPOSITE = "aws_cloudwatch_composite_alarm"
_ACCOUNT_BLOCK = "aws_s3_account_public_access_block"


def _all_blocks(project: Project) -> list[tuple[TerraformModule, Block]]:
    _whole_tree(project, "every block")
    return project.terraform_index.blocks


def _whole_tree(project: Project, question: str) -> None:
    """A project-wide question must not be answered from a part of the tree as if it were all
    of it: a part is given these answers (WIDE_QUESTIONS), and one not given is the split's
    failure (the scan is then done the ordinary way), never a wrong answer."""
    if project.terraform_part:
        from policyscan.project import PartialViewError

        raise PartialViewError(f"project-wide Terraform question not given to a part: {question}")


def _project_resources(
    project: Project, types: Iterable[str]
) -> list[tuple[TerraformModule, Block]]:
    wanted = frozenset(types)

    def build() -> list[tuple[TerraformModule, Block]]:
        _whole_tree(project, f"resources of {sorted(wanted)}")
        return list(project.terraform_index.resources_of(wanted))

    # Asked once per subject by several rules: answered once per project and set of types.
    found: list[tuple[TerraformModule, Block]] = project.memo(
        ("terraform_resources_of", wanted), build
    )
    return found


def _has_resource(module: TerraformModule, types: Collection[str]) -> bool:
    return any(b.type == "resource" and b.labels and b.labels[0] in types for b in module.blocks)


@dataclass(slots=True)
class _ModuleIndex:
    """What predicates look up in a module again and again, once per module: every subject of
    the module would otherwise walk all of its blocks (and their bodies) for each question."""

    resources: list[Block]
    by_type: dict[str, list[Block]]
    selections: dict[frozenset[str], list[Block]]
    # Module calls with the unresolved expressions of their bodies: a call handed a resource
    # may configure it.
    calls: list[tuple[Block, tuple[str, ...]]]
    # The expressions through which each block may name a bucket it sends logs or replicas to.
    copies_into: list[tuple[Block, tuple[str, ...]]] | None = None


def _module_index(project: Project, module: TerraformModule) -> _ModuleIndex:
    return project.memo_for("terraform_module_index", module, lambda: _index_module(module))


def _index_module(module: TerraformModule) -> _ModuleIndex:
    resources = [b for b in module.blocks if b.type == "resource"]
    by_type: dict[str, list[Block]] = {}
    for block in resources:
        by_type.setdefault(_rtype(block), []).append(block)
    calls = [(b, tuple(_texts(b.body))) for b in module.blocks if b.type == "module"]
    return _ModuleIndex(resources, by_type, {}, calls)


def _module_resources(
    project: Project, module: TerraformModule, types: Iterable[str]
) -> list[Block]:
    """The module's resources of ``types``, in module order. Shared: callers only read it."""
    wanted = frozenset(types)
    index = _module_index(project, module)
    if len(wanted) == 1:
        return index.by_type.get(next(iter(wanted)), [])
    selected = index.selections.get(wanted)
    if selected is None:
        present = [t for t in wanted if t in index.by_type]
        if len(present) <= 1:  # usually: one of the alternatives is used, or none
            selected = index.by_type[present[0]] if present else []
        else:
            selected = [b for b in index.resources if _rtype(b) in wanted]
        index.selections[wanted] = selected
    return selected


def tf_attr_set(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """``args.attr`` is set to something non-empty: a literal, or a reference to a resource or
    data source attribute (which cannot be empty). An input (var, local, module) is None."""
    attr = str(args["attr"])
    target = value.get(attr)
    if target is None:
        return Outcome(False, None, attr)
    if target.known:
        return Outcome(bool(target.as_str()), target, attr)
    if _RESOURCE_REF.fullmatch((target.text or "").strip()):
        return Outcome(True, None, "", {"evidence": f"{attr} = {target.text}"})
    return Outcome(None, target, attr)


# ------------------------------------------------------------------------------- existence

_TERNARY = re.compile(
    r"((?:var|local)\.[A-Za-z_][\w-]{0,128})\s{0,8}\?\s{0,8}(\d{1,9})\s{0,8}:\s{0,8}(\d{1,9})"
)


def instantiated(module: TerraformModule, block: Block) -> bool | None:
    """Whether the block exists: True without ``count``/``for_each`` or with a literal non-zero
    size, False for a literal zero, None when the size is only known at plan time."""
    count = block.body.get("count")
    for_each = block.body.get("for_each")
    if count is None and for_each is None:
        return True
    if count is not None:
        resolved = module.resolve(count)
        if resolved.known:
            number = _number(resolved)
            return None if number is None else number > 0
        match = _TERNARY.fullmatch((count.text or "").strip())
        if match:
            # `var.create ? 1 : 0`, the usual toggle: decidable when the flag has a default.
            flag = module.resolve(
                Value(None, block.path, block.span, known=False, literal=False, text=match.group(1))
            )
            truth = _truth(flag)
            if truth is not None:
                return int(match.group(2) if truth else match.group(3)) > 0
        return None
    assert for_each is not None
    resolved = module.resolve(for_each)
    if resolved.known and isinstance(resolved.data, dict | list):
        return len(resolved.data) > 0
    return None


def tf_instantiated(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: the block certainly exists (no count/for_each, or a literal non-zero one)."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    # Many rules ask it of every resource.
    return Outcome(project.memo_for("terraform_instantiated", node[1], lambda: instantiated(*node)))


# ------------------------------------------------------------------------------- references

_PATTERNS: dict[str, re.Pattern[str]] = {}


def _address_pattern(address: str) -> re.Pattern[str]:
    """``aws_s3_bucket.media`` followed by an attribute, with or without an instance index."""
    pattern = _PATTERNS.get(address)
    if pattern is None:
        pattern = re.compile(r"(?<![\w.-])" + re.escape(address) + r"(?:\[[^\]\n]*\])?\.")
        _PATTERNS[address] = pattern
    return pattern


def _type_pattern(rtype: str) -> re.Pattern[str]:
    key = "type:" + rtype
    pattern = _PATTERNS.get(key)
    if pattern is None:
        pattern = re.compile(
            r"(?<![\w.-])" + re.escape(rtype) + r"\.[A-Za-z_][\w-]*(?:\[[^\]\n]*\])?\."
        )
        _PATTERNS[key] = pattern
    return pattern


def _expanded_text(module: TerraformModule, value: Value, depth: int = 0) -> str:
    """The expression's text, with a bare ``local.x`` replaced by that local's expression
    (``bucket = local.bucket_id`` where ``bucket_id = aws_s3_bucket.this.id``)."""
    text = (value.text or "").strip()
    if depth < 4 and text.startswith("local."):
        source = module.locals.get(text[6:])
        if source is not None and not source.known:
            return _expanded_text(module, source, depth + 1)
    return text


# The attribute holding the literal name other resources may use instead of a reference
# (`bucket = "acme-media"`). Resources not listed are only matched by reference: a literal ARN
# or zone id cannot be tied to a block, so it stays undecided.
_NAME_ATTRS: dict[str, str] = {
    "aws_s3_bucket": "bucket",
    "aws_db_instance": "identifier",
    "aws_rds_cluster": "cluster_identifier",
    "aws_db_parameter_group": "name",
    "aws_rds_cluster_parameter_group": "name",
}


def _name_of(module: TerraformModule, block: Block) -> str | None:
    attr = _NAME_ATTRS.get(_rtype(block))
    value = block.body.get(attr) if attr else None
    return _known_str(module.resolve(value)) if value is not None else None


def refers(module: TerraformModule, value: Value | None, target: Block) -> bool | None:
    """Does this attribute value point at ``target``? True / False, or None when it depends on
    something unknown (a variable without default, a module output, a data source)."""
    if value is None:
        return False
    if not value.known:
        text = _expanded_text(module, value)
        if _address_pattern(target.address).search(text):
            return True
        if text.startswith(("var.", "local.")):
            resolved = module.resolve(value)
            if resolved.known:
                value = resolved
            else:
                return None
        elif _type_pattern(_rtype(target)).search(text):
            return False  # names another resource of the same type
        else:
            return None
    literal = _known_str(value)
    if literal is None:
        return None
    if "${" in literal:
        # *.tf.json writes every expression as a "${...}" string.
        return True if _address_pattern(target.address).search(literal) else None
    name = _name_of(module, target)
    if name is None:
        return None
    return literal == name or literal.endswith(":" + name)


@dataclass(slots=True)
class Attached:
    """Resources of some types that point at a target through one attribute."""

    found: list[Block]
    undecided: list[Block]  # pointing somewhere we cannot resolve: could be the target


def attached(
    project: Project, module: TerraformModule, target: Block, types: Iterable[str], attr: str
) -> Attached:
    found: list[Block] = []
    undecided: list[Block] = []
    for block in _module_resources(project, module, types):
        value = block.body.lookup(attr)
        answer = refers(module, value, target)
        if answer is True:
            found.append(block)
        elif answer is None:
            undecided.append(block)
    # A module call handed the target may configure it
    # (`module "x" { bucket = aws_s3_bucket.b.id }`).
    pattern = _address_pattern(target.address)
    for block, texts in _module_index(project, module).calls:
        if any(pattern.search(t) for t in texts):
            undecided.append(block)
    return Attached(found, undecided)


def _texts(value: Value) -> Iterator[str]:
    if value.text is not None and not value.known:
        yield value.text
    for _, item in value.items():
        yield from _texts(item)


def _mentions(value: Value, target: Block) -> bool:
    pattern = _address_pattern(target.address)
    return any(pattern.search(t) for t in _texts(value))


# ------------------------------------------------------------------------------- verdicts


@dataclass(slots=True)
class _Verdicts:
    """Several independent ways a requirement can be met: any True wins; otherwise any None
    keeps the answer undecided; otherwise the first False is the finding."""

    good: Outcome | None = None
    unknown: bool = False
    bad: Outcome | None = None

    def add(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        if outcome.result is True:
            self.good = self.good or outcome
        elif outcome.result is None:
            self.unknown = True
        elif self.bad is None:
            self.bad = outcome

    def result(self, missing: Outcome) -> Outcome:
        if self.good is not None:
            return self.good
        if self.unknown:
            return UNKNOWN
        return self.bad or missing


def _met(evidence: str) -> Outcome:
    return Outcome(True, None, "", {"evidence": evidence})


def _split_verdict(
    module: TerraformModule, block: Block, judge: Callable[[Value, Block], Outcome]
) -> Outcome | None:
    """Judge a resource that configures the subject; if it may not exist, only its absence of
    a problem is unknown, so the verdict is None."""
    exists = instantiated(module, block)
    if exists is False:
        return None  # certainly absent (count = 0): as if not written
    outcome = judge(module.resolved_body(block), block)
    if exists is None:
        return UNKNOWN
    return outcome


# ------------------------------------------------------------------------------- S3


def _versioning_inline(facts: Value) -> Outcome | None:
    blocks = facts.get("versioning")
    if blocks is None:
        return None
    for element in _elements(blocks):
        if not element.known:
            return UNKNOWN
        enabled = element.get("enabled")
        truth = _truth(enabled)
        if enabled is not None and not enabled.known:
            return Outcome(None, enabled, "versioning.enabled")
        if truth:
            return _met("inline versioning enabled")
        return Outcome(
            False,
            enabled or element,
            "versioning.enabled",
            {
                "found": "versioning is "
                + (
                    "disabled (enabled = false)"
                    if truth is False
                    else "declared without enabled = true"
                )
            },
        )
    return None


def _versioning_split(body: Value, block: Block) -> Outcome:
    config = body.get("versioning_configuration")
    for element in _elements(config):
        if not element.known:
            return UNKNOWN
        status = element.get("status")
        text = _known_str(status)
        if text is None:
            return Outcome(None, status, "versioning_configuration.status")
        if text == "Enabled":
            return _met(f"{block.address} status Enabled")
        return Outcome(
            False,
            status,
            "versioning_configuration.status",
            {"found": f"{block.address} sets status {text}"},
        )
    return Outcome(
        False,
        _header(block),
        "versioning_configuration",
        {"found": f"{block.address} has no versioning_configuration"},
    )


def _encryption_inline(facts: Value) -> Outcome | None:
    if facts.get("server_side_encryption_configuration") is None:
        return None
    return _met("inline server_side_encryption_configuration")


def _encryption_split(body: Value, block: Block) -> Outcome:
    return _met(block.address)


_LIFECYCLE_ACTIONS = (
    "expiration",
    "transition",
    "noncurrent_version_expiration",
    "noncurrent_version_transition",
)


def _lifecycle_rules(
    rules: Value | None, enabled_attr: str, enabled_value: object, where: str
) -> Outcome | None:
    if rules is None:
        return None
    unknown = False
    for rule in _elements(rules):
        if not rule.known:
            unknown = True
            continue
        flag = rule.get(enabled_attr)
        if flag is not None and not flag.known:
            unknown = True
            continue
        on = _truth(flag) is True if enabled_value is True else _known_str(flag) == enabled_value
        if on and any(rule.get(action) is not None for action in _LIFECYCLE_ACTIONS):
            return _met(f"{where} lifecycle rule with expiration or transition")
    if unknown:
        return UNKNOWN
    return Outcome(
        False,
        rules,
        enabled_attr,
        {"found": f"{where} has no enabled lifecycle rule that expires or transitions objects"},
    )


def _lifecycle_inline(facts: Value) -> Outcome | None:
    return _lifecycle_rules(facts.get("lifecycle_rule"), "enabled", True, "inline lifecycle_rule")


def _lifecycle_split(body: Value, block: Block) -> Outcome:
    outcome = _lifecycle_rules(body.get("rule"), "status", "Enabled", block.address)
    if outcome is None:
        return Outcome(False, _header(block), "rule", {"found": f"{block.address} has no rule"})
    if outcome.result is False:
        return Outcome(False, _header(block), "rule", outcome.details)
    return outcome


def _replication_inline(facts: Value) -> Outcome | None:
    if facts.get("replication_configuration") is None:
        return None
    return _met("inline replication_configuration")


def _replication_split(body: Value, block: Block) -> Outcome:
    rules = body.get("rule")
    unknown = False
    for rule in _elements(rules):
        status = rule.get("status")
        if not rule.known or (status is not None and not status.known):
            unknown = True
            continue
        if _known_str(status) == "Enabled":
            return _met(f"{block.address} replicates to another bucket")
    if unknown or rules is None:
        return UNKNOWN
    return Outcome(False, _header(block), "rule", {"found": f"{block.address} has no enabled rule"})


@dataclass(frozen=True, slots=True)
class _Feature:
    inline: Callable[[Value], Outcome | None]
    types: tuple[str, ...]
    split: Callable[[Value, Block], Outcome]
    missing: str


_S3_FEATURES: dict[str, _Feature] = {
    "versioning": _Feature(
        _versioning_inline,
        ("aws_s3_bucket_versioning",),
        _versioning_split,
        "no versioning (no aws_s3_bucket_versioning points at it, no inline versioning block)",
    ),
    "encryption": _Feature(
        _encryption_inline,
        ("aws_s3_bucket_server_side_encryption_configuration",),
        _encryption_split,
        "no server-side encryption configuration (no "
        "aws_s3_bucket_server_side_encryption_configuration, no inline block)",
    ),
    "lifecycle": _Feature(
        _lifecycle_inline,
        ("aws_s3_bucket_lifecycle_configuration",),
        _lifecycle_split,
        "no lifecycle rules (no aws_s3_bucket_lifecycle_configuration, no inline lifecycle_rule)",
    ),
    "replication": _Feature(
        _replication_inline,
        ("aws_s3_bucket_replication_configuration",),
        _replication_split,
        "no replication (no aws_s3_bucket_replication_configuration, "
        "no inline replication_configuration)",
    ),
}


def s3_bucket_has(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The bucket has ``args.feature`` (versioning, encryption, lifecycle, replication), inline
    (provider v3) or through the split resource that points at it (v4+)."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    feature = _S3_FEATURES[str(args["feature"])]
    verdicts = _Verdicts()
    verdicts.add(feature.inline(value))
    links = attached(project, module, block, feature.types, "bucket")
    for other in links.found:
        verdicts.add(_split_verdict(module, other, feature.split))
    if links.undecided:
        verdicts.unknown = True
    return verdicts.result(Outcome(False, None, "", {"found": feature.missing}))


_LOG_NAME = re.compile(
    r"(?:^|[-_.])(?:logs?|access-?logs?|audit-?logs?|cloudtrail|flow-?logs?|elb-?logs?|alb-?logs?)(?:[-_.]|$)",
    re.IGNORECASE,
)
# Attributes through which a bucket receives logs: such a bucket holds copies of records.
_LOG_ATTRS = (
    "target_bucket",
    "access_logs",
    "logging_config",
    "logging",
    "s3_bucket_name",
    "log_destination",
)


def s3_holds_primary_data(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: the bucket is not a log bucket nor a replication destination (those
    hold copies; replicating them again is not what the checklist asks)."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    names = [block.labels[1] if len(block.labels) > 1 else ""]
    for attr in ("bucket", "bucket_prefix"):
        text = _known_str(value.get(attr))
        if text:
            names.append(text)
    if any(_LOG_NAME.search(n) for n in names):
        return Outcome(False)
    pattern = _address_pattern(block.address)
    for other, texts in _copies_into(project, module):
        if other is not block and any(pattern.search(t) for t in texts):
            return Outcome(False)
    return TRUE


_COPY_ATTRS = frozenset((*_LOG_ATTRS, "rule", "replication_configuration"))


def _copies_into(project: Project, module: TerraformModule) -> list[tuple[Block, tuple[str, ...]]]:
    """Per block of the module, the expressions of its log destinations and replication
    destinations, read once per module instead of once per bucket."""
    index = _module_index(project, module)
    if index.copies_into is None:
        index.copies_into = []
        for other in module.blocks:
            body = other.body.data
            if isinstance(body, dict) and _COPY_ATTRS.isdisjoint(body):
                continue  # most blocks: none of the attributes read below
            texts: list[str] = []
            for attr in _LOG_ATTRS:
                for element in _elements(other.body.get(attr)):
                    texts.extend(_texts(element))
            # replication: rule { destination { bucket = aws_s3_bucket.replica.arn } } (v4), or
            # replication_configuration { rules { destination {...} } } inline (v3). A new list:
            # _elements hands out the parsed tree's own.
            rules = list(_elements(other.body.get("rule")))
            for config in _elements(other.body.get("replication_configuration")):
                rules.extend(_elements(config.get("rules")))
            for rule in rules:
                for dest in _elements(rule.get("destination")):
                    texts.extend(_texts(dest))
            if texts:
                index.copies_into.append((other, tuple(texts)))
    return index.copies_into


_PAB_FLAGS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)


def _pab_verdict(body: Value, block: Block) -> Outcome:
    for flag in _PAB_FLAGS:
        value = body.get(flag)
        truth = _truth(value)
        if value is not None and not value.known:
            return Outcome(None, value, flag)
        if truth is not True:
            return UNKNOWN  # the flag itself is judged on the block (PST rule on the resource)
    return _met(f"{block.address} with all four flags true")


def s3_public_access_block(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The bucket is covered by a public access block with all four flags true: its own
    ``aws_s3_bucket_public_access_block`` or the account-level one. A block that exists with
    a flag off is judged where it is written, so here it is None."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    verdicts = _Verdicts()
    for other_module, account in _project_resources(project, (_ACCOUNT_BLOCK,)):
        verdicts.add(_split_verdict(other_module, account, _pab_verdict))
    links = attached(project, module, block, ("aws_s3_bucket_public_access_block",), "bucket")
    for other in links.found:
        verdicts.add(_split_verdict(module, other, _pab_verdict))
    if links.undecided:
        verdicts.unknown = True
    return verdicts.result(
        Outcome(False, None, "", {"found": "no aws_s3_bucket_public_access_block points at it"})
    )


# --- bucket policies

_PUBLIC_GROUPS = re.compile(
    r"acs\.amazonaws\.com/groups/global/(?:AllUsers|AuthenticatedUsers)", re.IGNORECASE
)


def _policy_tree(module: TerraformModule, policy: Value) -> Value | None:
    """The policy document as a located Value tree, from a JSON string (heredoc or quoted),
    a ``jsonencode({...})`` literal, or a ``data.aws_iam_policy_document`` in the module
    (converted to JSON's shape). None when it cannot be read statically."""
    if policy.known:
        text = policy.as_str()
        if text is None:
            return None
        return _json_tree(text, policy)
    text = (policy.text or "").strip()
    if text.startswith("jsonencode(") and text.endswith(")"):
        return _hcl_tree(text[len("jsonencode(") : -1], policy)
    match = re.fullmatch(r"data\.aws_iam_policy_document\.([A-Za-z_][\w-]*)\.json", text)
    if match:
        for block in module.blocks:
            if block.type == "data" and block.labels == ("aws_iam_policy_document", match.group(1)):
                return _document_tree(module, block)
    return None


def _json_tree(text: str, policy: Value) -> Value | None:
    from policyscan.parsers import yamlnodes

    try:
        json.loads(text)
    except ValueError:
        return None
    # JSON is YAML: the YAML reader keeps each node's line. A heredoc's body starts on the
    # line after `<<EOF`; a quoted string on the attribute's own line.
    heredoc = (policy.text or "").lstrip().startswith("<<")
    offset = policy.span.start_line if heredoc else policy.span.start_line - 1
    tree, problems = yamlnodes.load(policy.path, text)
    if tree is None or problems:
        # Valid JSON YAML refuses (tabs for indentation): the whole attribute is the place.
        return _plain(json.loads(text), policy)
    return _shift(tree, offset, policy.path)


def _plain(data: Any, at: Value) -> Value:
    if isinstance(data, dict):
        return Value({str(k): _plain(v, at) for k, v in data.items()}, at.path, at.span)
    if isinstance(data, list):
        return Value([_plain(v, at) for v in data], at.path, at.span)
    return Value(data, at.path, at.span)


def _hcl_tree(text: str, policy: Value) -> Value | None:
    from policyscan.model import Artifact, Kind
    from policyscan.parsers import terraform as tf

    doc = tf.parse(Artifact(policy.path, policy.path, Kind.TERRAFORM), "x = " + text + "\n")
    tree = doc.attributes.get("x")
    if tree is None or doc.problems:
        return None
    return _shift(tree, policy.span.start_line - 1, policy.path)


def _shift(value: Value, lines: int, path: str) -> Value:
    span = value.span
    moved = Span(span.start_line + lines, span.start_col, span.end_line + lines, span.end_col)
    if isinstance(value.data, dict):
        data: Any = {k: _shift(v, lines, path) for k, v in value.data.items()}
    elif isinstance(value.data, list):
        data = [_shift(v, lines, path) for v in value.data]
    else:
        data = value.data
    return Value(data, path, moved, value.known, value.literal, value.text)


def _document_tree(module: TerraformModule, block: Block) -> Value:
    """``data "aws_iam_policy_document"`` statements as JSON-shaped Values."""
    body = module.resolved_body(block)
    statements: list[Value] = []
    for statement in _elements(body.get("statement")):
        entries: dict[str, Value] = {}
        effect = statement.get("effect")
        entries["Effect"] = (
            effect if effect is not None else Value("Allow", block.path, statement.span)
        )
        for key, name in (("actions", "Action"), ("not_actions", "NotAction")):
            if statement.get(key) is not None:
                entries[name] = statement.get(key)  # type: ignore[assignment]
        principals = statement.get("principals")
        if principals is not None:
            entries["Principal"] = Value(
                [_principal(p) for p in _elements(principals)], block.path, principals.span
            )
        if statement.get("not_principals") is not None:
            entries["NotPrincipal"] = statement.get("not_principals")  # type: ignore[assignment]
        if statement.get("condition") is not None:
            entries["Condition"] = statement.get("condition")  # type: ignore[assignment]
        statements.append(Value(entries, block.path, statement.span, known=statement.known))
    return Value({"Statement": Value(statements, block.path, block.span)}, block.path, block.span)


def _principal(block: Value) -> Value:
    kind = _known_str(block.get("type"))
    identifiers = block.get("identifiers")
    if not block.known or kind is None or identifiers is None:
        return Value(None, block.path, block.span, known=False, literal=False, text="principals")
    return Value({kind: identifiers}, block.path, block.span)


# A reference to a resource's or data source's attribute (`aws_iam_role.app.arn`) names one
# principal, never everyone; only inputs (var, local, module outputs) could hold "*".
_RESOURCE_REF = re.compile(
    r"(?:data\.)?[a-z][a-z0-9]{0,64}_[a-z0-9_]{1,128}\.[A-Za-z_][\w-]{0,128}"
    r"(?:\[[^\]\n]{0,256}\])?\.\w{1,128}"
)


def _is_everyone(principal: Value | None) -> bool | None:
    """``"*"``, ``{"AWS": "*"}``, ``{"AWS": ["*"]}`` (and the data source's ``type = "*"``)."""
    if principal is None:
        return False
    if not principal.known:
        return False if _RESOURCE_REF.fullmatch((principal.text or "").strip()) else None
    if isinstance(principal.data, list):
        answers = [_is_everyone(p) for p in principal.data]
        return True if True in answers else (None if None in answers else False)
    if isinstance(principal.data, dict):
        answers = []
        for key, ids in principal.data.items():
            if key == "*":
                answers.append(True)
                continue
            if key not in ("AWS", "*"):
                continue
            for item in _elements(ids):
                answers.append(_is_everyone(item))
        return True if True in answers else (None if None in answers else False)
    return _known_str(principal) == "*"


def _write_action(action: str) -> bool:
    """Anything but reading: ``*``, ``s3:*``, ``s3:Put*``, ``s3:DeleteObject``, ``s3:*Object``."""
    name = action.strip().lower()
    if name in ("*", "s3:*"):
        return True
    if ":" in name:
        name = name.split(":", 1)[1]
    return not name.startswith(("get", "list", "describe"))


def public_write_statement(tree: Value) -> tuple[Value | None, bool]:
    """The first statement that allows everyone to write, and whether some statement could
    not be read (so that "none found" is not a certainty)."""
    statements = tree.get("Statement")
    if statements is None:
        return None, False
    undecided = False
    for statement in _elements(statements):
        if not statement.known or not isinstance(statement.data, dict):
            undecided = True
            continue
        effect = statement.get("Effect")
        effect_text = _known_str(effect)
        if effect_text is None:
            undecided = undecided or effect is not None
            continue
        if effect_text.lower() != "allow":
            continue
        if statement.get("Condition") is not None:
            continue  # a condition (source VPC, org id, secure transport...) narrows it: not judged
        everyone = _is_everyone(statement.get("Principal"))
        if everyone is None:
            undecided = True
        if not everyone:
            continue
        if statement.get("NotAction") is not None:
            return statement, undecided  # allow everything except a list: writes are allowed
        actions = _elements(statement.get("Action"))
        for action in actions:
            text = _known_str(action)
            if text is None:
                undecided = True
            elif _write_action(text):
                return statement, undecided
    return None, undecided


def s3_policy_not_public_write(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No statement of the bucket policy (``policy`` of aws_s3_bucket_policy or of an inline
    aws_s3_bucket) allows ``Principal "*"`` to write or do everything without a Condition."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    raw = block.body.get("policy")
    if raw is None:
        return TRUE
    policy = module.resolve(raw)
    tree = _policy_tree(module, policy)
    if tree is None:
        return Outcome(None, policy, "policy")
    statement, undecided = public_write_statement(tree)
    if statement is None:
        return UNKNOWN if undecided else TRUE
    principal = statement.get("Principal") or statement
    actions = statement.get("Action") or statement.get("NotAction")
    listed = ", ".join(_known_str(a) or "?" for a in _elements(actions))
    if statement.get("NotAction") is not None:
        listed = "everything but " + listed
    if (
        principal.path == block.path
        and principal.span.start_line >= policy.span.start_line
        and principal.span.start_line <= policy.span.end_line
    ):
        # The document is written in the attribute: point at its Principal line.
        return Outcome(False, principal, "policy", {"actions": listed})
    # A policy document data source: the finding stays on the policy, the statement is related.
    return Outcome(
        False,
        policy,
        "policy",
        {"actions": listed},
        (Related(principal.location, "the statement that allows everyone"),),
    )


# ------------------------------------------------------------------------------- security groups

_DATASTORE_PORTS: dict[int, str] = {
    5432: "PostgreSQL",
    3306: "MySQL",
    6379: "Redis",
    27017: "MongoDB",
    9200: "Elasticsearch",
    11211: "Memcached",
    1433: "SQL Server",
    5439: "Redshift",
    1521: "Oracle",
    9042: "Cassandra",
}
_WEB_PORTS = frozenset({80, 443})
_WORLD = frozenset({"0.0.0.0/0", "::/0"})


@dataclass(slots=True)
class IngressRule:
    """One ingress permission, whatever resource wrote it."""

    protocol: Value | None
    from_port: Value | None
    to_port: Value | None
    cidrs: list[Value]  # the attributes holding source CIDRs (lists or single strings)
    known: bool = True
    # Where a finding points: the `ingress {` block inside a security group; None for a rule
    # resource, which is reported at its `resource` line (the whole rule is the problem).
    at: Value | None = None


def _ingress_rules(facts: Value, module: TerraformModule, block: Block) -> list[IngressRule] | None:
    """The subject's ingress permissions, or None when the subject is not about ingress."""
    rtype = _rtype(block)
    if rtype == "aws_security_group":
        rules = []
        for element in _elements(facts.get("ingress")):
            cidrs = [
                v
                for v in (element.get("cidr_blocks"), element.get("ipv6_cidr_blocks"))
                if v is not None
            ]
            rules.append(
                IngressRule(
                    element.get("protocol"),
                    element.get("from_port"),
                    element.get("to_port"),
                    cidrs,
                    element.known,
                    element,
                )
            )
        return rules
    if rtype == "aws_security_group_rule":
        kind = _known_str(_attr(module, block, "type"))  # the facts' `type` is the resource type
        if kind != "ingress":
            return None
        cidrs = [
            v for v in (facts.get("cidr_blocks"), facts.get("ipv6_cidr_blocks")) if v is not None
        ]
        return [
            IngressRule(facts.get("protocol"), facts.get("from_port"), facts.get("to_port"), cidrs)
        ]
    if rtype == "aws_vpc_security_group_ingress_rule":
        cidrs = [v for v in (facts.get("cidr_ipv4"), facts.get("cidr_ipv6")) if v is not None]
        return [
            IngressRule(
                facts.get("ip_protocol"), facts.get("from_port"), facts.get("to_port"), cidrs
            )
        ]
    return None


def _world_cidr(values: list[Value]) -> tuple[Value | None, bool]:
    """The first world-open CIDR attribute, and whether some CIDR is unknown."""
    unknown = False
    for value in values:
        if not value.known:
            unknown = True
            continue
        for item in _elements(value):
            text = _known_str(item)
            if text is None:
                unknown = unknown or not item.known
            elif text.strip() in _WORLD:
                return value, unknown
    return None, unknown


def _protocol(value: Value | None) -> str | None:
    """tcp, udp, icmp, all; None when unknown."""
    if value is None:
        return None
    text = _known_str(value)
    if text is None:
        return None
    text = text.strip().lower()
    return {
        "-1": "all",
        "all": "all",
        "6": "tcp",
        "17": "udp",
        "1": "icmp",
        "58": "icmp",
        "icmpv6": "icmp",
    }.get(text, text)


@dataclass(frozen=True, slots=True)
class Exposure:
    """What a world-open ingress permission exposes."""

    kind: str  # all, ssh, datastore, other, web, icmp
    ports: str
    protocol: str
    cidr: Value
    datastores: tuple[str, ...] = ()


def classify(rule: IngressRule) -> Exposure | bool | None:
    """The exposure of one ingress rule: an Exposure, False when not open to the world, None
    when it cannot be known."""
    if not rule.known:
        return None
    cidr, unknown = _world_cidr(rule.cidrs)
    if cidr is None:
        return None if unknown else False
    protocol = _protocol(rule.protocol)
    if protocol is None:
        return None
    if protocol == "all":
        return Exposure("all", "all ports", "all", cidr)
    if protocol == "icmp":
        return Exposure("icmp", "icmp", protocol, cidr)  # ping and path-MTU discovery: not judged
    low, high = _number(rule.from_port), _number(rule.to_port)
    if low is None or high is None:
        return None
    lo, hi = int(low), int(high)
    if protocol in ("tcp", "udp") and lo == -1 and hi == -1:
        lo, hi = 0, 65535
    ports = str(lo) if lo == hi else f"{lo}-{hi}"
    if protocol not in ("tcp", "udp"):
        return Exposure("other", ports, protocol, cidr)
    if protocol == "tcp" and lo <= 22 <= hi:
        datastores = tuple(
            f"{name} {port}" for port, name in sorted(_DATASTORE_PORTS.items()) if lo <= port <= hi
        )
        return Exposure("ssh", ports, protocol, cidr, datastores)
    datastores = tuple(
        f"{name} {port}" for port, name in sorted(_DATASTORE_PORTS.items()) if lo <= port <= hi
    )
    if datastores:
        return Exposure("datastore", ports, protocol, cidr, datastores)
    if lo == hi and lo in _WEB_PORTS:
        return Exposure("web", ports, protocol, cidr)
    return Exposure("other", ports, protocol, cidr)


def sg_ingress_subject(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: a security group, an ingress rule resource (not egress), that exists."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    if value is not subject.facts:  # under a quantifier: nothing to share
        return _sg_ingress_subject(value, module, block)
    # Three rules ask it of every resource.
    answer = project.memo_for(
        "terraform_sg_ingress_subject", block, lambda: _sg_ingress_subject(value, module, block)
    )
    return Outcome(answer.result)


def _sg_ingress_subject(value: Value, module: TerraformModule, block: Block) -> Outcome:
    if _ingress_rules(value, module, block) is None:
        return Outcome(False)
    return Outcome(instantiated(module, block))


def sg_not_world_open(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """No ingress permission of the subject exposes ``args.exposure`` (all, ssh, datastore,
    other) to 0.0.0.0/0 or ::/0. A range containing 22 is SSH's (and also a datastore's when
    it contains one of their ports); "other" is what is neither SSH, datastore nor 80/443."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    wanted = str(args["exposure"])
    rules = _ingress_rules(value, module, block) or []
    unknown = False
    for rule in rules:
        exposure = classify(rule)
        if exposure is None:
            unknown = True
            continue
        if exposure is False or not isinstance(exposure, Exposure):
            continue
        hit = exposure.kind == wanted or (
            wanted == "datastore" and exposure.kind == "ssh" and exposure.datastores
        )
        if not hit:
            continue
        details = {
            "ports": exposure.ports,
            "protocol": exposure.protocol,
            "cidr": ", ".join(
                _known_str(i) or "?"
                for i in _elements(exposure.cidr)
                if (_known_str(i) or "") in _WORLD
            ),
            "datastores": ", ".join(exposure.datastores[:3])
            + (f" and {len(exposure.datastores) - 3} more" if len(exposure.datastores) > 3 else ""),
        }
        return Outcome(False, rule.at, "ingress" if rule.at is not None else "", details)
    return UNKNOWN if unknown else TRUE


# ------------------------------------------------------------------------------- RDS

_DEV_NAME = re.compile(
    r"(?:^|[-_./\s])(?:dev|devel|develop|development|test|testing|tst|staging|stage|stg|qa|uat|sandbox|demo|"
    r"preview|review|ci|local|scratch|tmp|temp)(?:[-_./\s]|\d|$)",
    re.IGNORECASE,
)


def tf_production_looking(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: nothing names this resource as development, test or staging (its
    identifier, name, Environment tag, resource name, or the directory it sits in)."""
    texts = [subject.key, subject.path.rsplit("/", 1)[0] if "/" in subject.path else ""]
    node = _node(subject)
    for attr in ("identifier", "identifier_prefix", "cluster_identifier", "name", "db_name"):
        if node is not None:
            texts.append(_known_str(_attr(node[0], node[1], attr)) or "")
    tags = value.get("tags")
    if tags is not None and isinstance(tags.data, dict):
        for key, tag in tags.data.items():
            if key.lower() in ("environment", "env", "stage", "tier"):
                texts.append(_known_str(tag) or "")
    return Outcome(not any(_DEV_NAME.search(t) for t in texts if t))


def rds_has_replica(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Some aws_db_instance of the module is a read replica of this one."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    links = attached(project, module, block, ("aws_db_instance",), "replicate_source_db")
    for replica in links.found:
        if instantiated(module, replica):
            return Outcome(
                True,
                None,
                "",
                {"evidence": f"read replica {replica.address}"},
                (_related(replica, "read replica"),),
            )
    return Outcome(False)


_PG_FAMILY = re.compile(r"^(?:aurora-)?postgres(?:ql)?\d", re.IGNORECASE)
_MYSQL_FAMILY = re.compile(r"^(?:aurora-mysql|mysql|mariadb|aurora)\d", re.IGNORECASE)
_PG_ENGINE = re.compile(r"^(?:postgres|aurora-postgresql)$", re.IGNORECASE)
_MYSQL_ENGINE = re.compile(r"^(?:mysql|mariadb|aurora-mysql|aurora)$", re.IGNORECASE)

# What each setting needs, per engine: the parameter name and the values that switch it off.
_PARAMETERS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "slow-query-log": {
        "postgres": ("log_min_duration_statement", ("-1",)),
        "mysql": ("slow_query_log", ("0", "off", "false")),
    },
    "query-timeout": {"postgres": ("statement_timeout", ("0",))},
}


def _engine_family(engine: str | None) -> str | None:
    if engine is None:
        return None
    if _PG_ENGINE.match(engine):
        return "postgres"
    if _MYSQL_ENGINE.match(engine):
        return "mysql"
    return None


def _group_block(
    project: Project, module: TerraformModule, ref: Value, types: tuple[str, ...]
) -> Block | bool | None:
    """The parameter group a ``*_parameter_group_name`` value names: a Block, False for an
    AWS default group (``default.postgres16``), None when it cannot be told."""
    literal = _known_str(ref) if ref.known else None
    if literal is not None and literal.startswith("default."):
        return False
    for block in _module_resources(project, module, types):
        if refers(module, ref, block):
            return block
    return None


def _group_sets(
    module: TerraformModule, group: Block, family: str, parameter: str, off: tuple[str, ...]
) -> Outcome:
    """Whether a parameter group sets ``parameter`` to an active value."""
    body = module.resolved_body(group)
    family_text = _known_str(body.get("family"))
    pattern = _PG_FAMILY if family == "postgres" else _MYSQL_FAMILY
    if family_text is None or not pattern.match(family_text):
        return UNKNOWN  # only a literal family of that engine is judged
    if not instantiated(module, group):
        return UNKNOWN
    unknown = False
    for element in _elements(body.get("parameter")):
        if not element.known:
            unknown = True
            continue
        name = _known_str(element.get("name"))
        if name is None:
            unknown = True
            continue
        if name.lower() != parameter:
            continue
        setting = element.get("value")
        text = _known_str(setting)
        if text is None:
            return Outcome(None, setting, "parameter.value")
        if text.strip().lower() in off:
            return Outcome(
                False,
                setting,
                "parameter.value",
                {"found": f"{group.address} sets {parameter} = {text}, which switches it off"},
            )
        return Outcome(True, None, "", {"evidence": f"{group.address} sets {parameter} = {text}"})
    if unknown:
        return UNKNOWN
    return Outcome(
        False,
        _header(group),
        "parameter",
        {"found": f"parameter group {group.address} does not set {parameter}"},
    )


def rds_parameter_set(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The database's parameter groups set the setting ``args.setting`` (slow-query-log,
    query-timeout) for its engine. A database without any parameter group uses the AWS default
    group, which sets neither. An Aurora cluster counts its cluster group and its instances'."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    engine = _known_str(value.get("engine"))
    family = _engine_family(engine)
    wanted = _PARAMETERS[str(args["setting"])].get(family or "")
    if wanted is None:
        return UNKNOWN
    parameter, off = wanted
    refs: list[tuple[Value | None, tuple[str, ...]]] = []
    if _rtype(block) == "aws_db_instance":
        refs.append((block.body.get("parameter_group_name"), ("aws_db_parameter_group",)))
    else:
        refs.append(
            (
                block.body.get("db_cluster_parameter_group_name"),
                ("aws_rds_cluster_parameter_group",),
            )
        )
        members = attached(
            project, module, block, ("aws_rds_cluster_instance",), "cluster_identifier"
        )
        if members.undecided:
            return UNKNOWN
        for member in members.found:
            refs.append((member.body.get("db_parameter_group_name"), ("aws_db_parameter_group",)))
    verdicts = _Verdicts()
    named_any = False
    for ref, types in refs:
        if ref is None:
            continue
        named_any = True
        group = _group_block(project, module, ref, types)
        if group is None:
            verdicts.unknown = True
        elif group is not False:
            assert not isinstance(group, bool)
            verdicts.add(_group_sets(module, group, family or "", parameter, off))
    missing = Outcome(
        False,
        None,
        "",
        {
            "found": f"{block.address} has no parameter group, so the engine default applies "
            f"({parameter} off)"
            if not named_any
            else f"{block.address} uses the AWS default parameter group ({parameter} off)"
        },
    )
    return verdicts.result(missing)


_BACKUP_REPLICATION = ("aws_db_instance_automated_backups_replication",)


def rds_cross_region_backup(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Somewhere in the project, automated backups are copied to another region: an
    aws_db_instance_automated_backups_replication, an AWS Backup plan rule with a copy_action,
    or an Aurora global cluster."""
    # The same answer for every database of the project.
    outcome: Outcome = project.memo(
        "rds_cross_region_backup", lambda: _cross_region_backup(project)
    )
    return outcome


_REPLICATED = (*_BACKUP_REPLICATION, "aws_rds_global_cluster")


def _cross_region_backup(project: Project) -> Outcome:
    for module, block in _project_resources(project, _REPLICATED):
        if instantiated(module, block) is not False:
            return Outcome(
                True, None, "", {"evidence": block.address}, (_related(block, block.address),)
            )
    for _, block in _project_resources(project, ("aws_backup_plan",)):
        if _copies(block):
            return Outcome(
                True,
                None,
                "",
                {"evidence": f"{block.address} copy_action"},
                (_related(block, "copy_action"),),
            )
    return Outcome(False)


def _copies(plan: Block) -> bool:
    return any(rule.get("copy_action") is not None for rule in _elements(plan.body.get("rule")))


def _replicates(module: TerraformModule) -> bool:
    return any(
        instantiated(module, b) is not False
        for b in module.blocks
        if b.type == "resource" and b.labels and b.labels[0] in _REPLICATED
    )


# ------------------------------------------------------------------------------- secrets


def _sensitive(value: Value) -> Value:
    out = copy.copy(value)
    out.sensitive = True
    return out


def tf_secret_attr(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """``args.attrs`` (a list, or a mapping attribute -> secret class) hold no secret written
    literally in this block (``mode: literal``), or none weak for its class (``mode: weak``).
    A value from a variable default is judged at the variable, not here; a reference is met."""
    from policyscan.secretstrength import SecretClass, assess, classify_name, is_reference, redact

    attrs = args.get("attrs") or ()
    classes: Mapping[str, Any] = attrs if isinstance(attrs, Mapping) else {a: None for a in attrs}
    mode = str(args.get("mode", "weak"))
    usernames = tuple(args.get("username_attrs", ()))
    unknown = False
    for attr, forced in classes.items():
        target = value.get(attr)
        if target is None:
            continue
        if not target.known:
            # A pure reference (`random_password.db.result`, `var.x` set at apply time, a
            # Secrets Manager data source) is not a literal: that is what the checklist wants.
            # An expression with a string inside (`coalesce(var.x, "changeme")`) might be one.
            unknown = unknown or '"' in (target.text or "")
            continue
        if not target.literal or isinstance(target.data, dict | list | bool):
            continue
        text = target.as_str()
        if not text or is_reference(text):
            continue
        details = {"attr": attr, "redacted": redact(text)}
        if mode == "literal":
            return Outcome(False, _sensitive(target), attr, details)
        cls = SecretClass(forced) if forced else classify_name(attr)
        if cls is None:
            continue
        username = None
        for name in usernames:
            username = _known_str(value.get(name)) or username
        weakness = assess(text, cls, username=username)
        if weakness is not None:
            return Outcome(
                False,
                _sensitive(target),
                attr,
                {**details, "reason": weakness.reason, "class": cls.value},
            )
    return UNKNOWN if unknown else TRUE


def tf_secret_named(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: the block's first label names a secret (``variable "db_password"``)."""
    from policyscan.secretstrength import classify_name

    node = _node(subject)
    if node is None or not node[1].labels:
        return UNKNOWN
    return Outcome(classify_name(node[1].labels[0]) is not None)


_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def tf_variable_secret(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A variable whose name says it holds a secret (``db_password``, ``secret_key``, ``token``)
    has no literal default (``mode: literal``), or no weak one (``mode: weak``); ``mode: aws``
    judges AWS keys only (by name, or an access key id by its shape, whatever the name)."""
    from policyscan.secretstrength import SecretClass, assess, classify_name, is_reference, redact

    node = _node(subject)
    if node is None:
        return UNKNOWN
    _, block = node
    name = block.labels[0] if block.labels else ""
    cls = classify_name(name)
    default = value.get("default")
    if default is None or not default.known or not isinstance(default.data, str):
        return TRUE
    text = default.data
    mode = str(args.get("mode", "weak"))
    if mode == "aws":
        # An AWS secret key by its name, or an access key id by its shape, whatever the name.
        if not (cls is SecretClass.AWS_SECRET or _AWS_KEY_ID.search(text)):
            return TRUE
        cls = cls or SecretClass.AWS_SECRET
    if cls is None or not text.strip() or is_reference(text):
        return TRUE
    details = {"variable": name, "redacted": redact(text), "class": cls.value}
    if mode in ("literal", "aws"):
        return Outcome(False, _sensitive(default), "default", details)
    weakness = assess(text, cls)
    if weakness is None:
        return TRUE
    return Outcome(False, _sensitive(default), "default", {**details, "reason": weakness.reason})


# ------------------------------------------------------------------------------- ElastiCache


def elasticache_redis_auth(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Redis requires a password: ``auth_token`` or RBAC ``user_group_ids`` on a replication
    group (from a variable counts as set). A standalone ``aws_elasticache_cluster`` running
    Redis cannot require one at all."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    _, block = node
    if _rtype(block) == "aws_elasticache_cluster":
        return Outcome(
            False, None, "", {"reason": "a standalone aws_elasticache_cluster cannot require AUTH"}
        )
    for attr in ("auth_token", "user_group_ids"):
        if value.get(attr) is not None:
            return Outcome(True, None, "", {"evidence": f"{attr} set"})
    reason = "neither auth_token nor user_group_ids is set"
    if _truth(value.get("transit_encryption_enabled")) is not True:
        reason += " (and transit encryption, which AUTH requires, is not enabled)"
    return Outcome(False, None, "", {"reason": reason})


# ------------------------------------------------------------------------------- load balancers

_LB_TYPES = ("aws_lb", "aws_alb")
_LISTENER_TYPES = ("aws_lb_listener", "aws_alb_listener")


def _lb_public_application(module: TerraformModule, lb: Block) -> bool | None:
    """An internet-facing application load balancer (None when that depends on a variable)."""
    kind = _attr(module, lb, "load_balancer_type")
    if kind is not None:
        text = _known_str(kind)
        if text is None:
            return None
        if text != "application":
            return False
    internal = _attr(module, lb, "internal")
    if internal is None:
        return True
    truth = _truth(internal)
    return None if truth is None else not truth


def lb_public_application(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: an internet-facing application load balancer that certainly exists."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    public = _lb_public_application(module, block)
    if public is not True:
        return Outcome(public)
    return Outcome(instantiated(module, block))


def _listener_protocol(module: TerraformModule, listener: Block) -> str | None:
    protocol = _attr(module, listener, "protocol")
    if protocol is None:
        return "HTTP"  # an ALB listener without protocol is HTTP (an NLB's must name one)
    text = _known_str(protocol)
    return text.upper() if text else None


def lb_has_https_listener(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The load balancer has an HTTPS listener with a certificate in the module; False when
    every listener pointing at it is plain HTTP; None when there is none or one is undecided."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    links = attached(project, module, block, _LISTENER_TYPES, "load_balancer_arn")
    plain: list[Block] = []
    unknown = bool(links.undecided)
    for listener in links.found:
        exists = instantiated(module, listener)
        protocol = _listener_protocol(module, listener)
        if exists is None or protocol is None:
            unknown = True
            continue
        if not exists:
            continue
        if protocol == "HTTPS":
            cert = listener.body.get("certificate_arn")
            extra = _module_resources(
                project, module, ("aws_lb_listener_certificate", "aws_alb_listener_certificate")
            )
            if cert is not None or any(_mentions(c.body, listener) for c in extra):
                return Outcome(
                    True,
                    None,
                    "",
                    {"evidence": f"{listener.address} HTTPS with a certificate"},
                    (_related(listener, "HTTPS listener"),),
                )
            unknown = True  # HTTPS without a certificate does not apply; not ours to judge
        else:
            plain.append(listener)
    if unknown or not plain:
        return UNKNOWN
    ports = ", ".join(_known_str(_attr(module, p, "port")) or "?" for p in plain)
    # Reported at the first plain listener: that is where traffic is served without TLS.
    return Outcome(
        False,
        _header(plain[0]),
        "listener",
        {"listeners": ports},
        (_related(block, "the load balancer"),),
    )


def _listener_lb(project: Project, module: TerraformModule, listener: Block) -> Block | None:
    ref = listener.body.get("load_balancer_arn")
    for lb in _module_resources(project, module, _LB_TYPES):
        if refers(module, ref, lb) is True:
            return lb
    return None


def lb_public_http_listener(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: a plain-HTTP listener (that certainly exists) of an internet-facing
    application load balancer of the same module."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    if _listener_protocol(module, block) != "HTTP":
        return Outcome(False)
    lb = _listener_lb(project, module, block)
    if lb is None:
        return UNKNOWN
    public = _lb_public_application(module, lb)
    if public is not True:
        return Outcome(public)
    return Outcome(instantiated(module, block))


def lb_listener_redirects_https(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The listener's default action redirects to HTTPS (or answers with a fixed response):
    it never forwards plain-HTTP traffic to the application."""
    actions = _elements(value.get("default_action"))
    if not actions:
        return UNKNOWN
    for action in actions:
        if not action.known:
            return UNKNOWN
        kind_value = action.get("type")
        kind = _known_str(kind_value)
        if kind is None and action.get("forward") is not None:
            kind = "forward"
        if kind is None:
            return Outcome(None, kind_value, "default_action.type")
        if kind == "redirect":
            redirect = _elements(action.get("redirect"))
            protocol = redirect[0].get("protocol") if redirect else None
            text = _known_str(protocol)
            if protocol is not None and text is None:
                return Outcome(None, protocol, "default_action.redirect.protocol")
            if text is not None and text.upper() == "HTTPS":
                return Outcome(True, None, "", {"evidence": "redirects to HTTPS"})
            # Reported at the listener: the listener as a whole serves plain HTTP.
            return Outcome(
                False, None, "", {"action": f"redirect that keeps protocol {text or '#{protocol}'}"}
            )
        if kind == "fixed-response":
            return Outcome(True, None, "", {"evidence": "answers with a fixed response"})
        if kind == "forward":
            return Outcome(False, None, "", {"action": "forward"})
    return UNKNOWN


def lb_waf_associated(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A WAF web ACL is associated with the load balancer (aws_wafv2_web_acl_association or the
    classic regional association), or it sits behind a CloudFront distribution with a web ACL."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    links = attached(
        project,
        module,
        block,
        ("aws_wafv2_web_acl_association", "aws_wafregional_web_acl_association"),
        "resource_arn",
    )
    for association in links.found:
        exists = instantiated(module, association)
        if exists:
            return Outcome(
                True,
                None,
                "",
                {"evidence": association.address},
                (_related(association, "WAF association"),),
            )
        if exists is None:
            return UNKNOWN
    if links.undecided:
        return UNKNOWN
    for cdn in _module_resources(project, module, ("aws_cloudfront_distribution",)):
        if any(_mentions(origin, block) for origin in _elements(cdn.body.get("origin"))):
            acl = cdn.body.get("web_acl_id")
            if acl is None:
                continue
            named = _known_str(acl) if acl.known else None
            if named or _RESOURCE_REF.fullmatch((acl.text or "").strip()):
                evidence = f"behind {cdn.address} with a web ACL"
                return Outcome(True, None, "", {"evidence": evidence})
            return UNKNOWN
    return Outcome(False)


def waf_rate_limited(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A WAFv2 web ACL has a rule with a ``rate_based_statement`` (or the managed anti-DDoS
    group). A reference to a custom rule group, or a rule written by a ``dynamic`` block without
    a visible statement, leaves it undecided."""
    unknown = False
    for rule in _elements(value.get("rule")):
        for statement in _elements(rule.get("statement")):
            if statement.get("rate_based_statement") is not None:
                return Outcome(True, None, "", {"evidence": "rate_based_statement"})
            for managed in _elements(statement.get("managed_rule_group_statement")):
                if "antiddos" in (_known_str(managed.get("name")) or "").lower():
                    return Outcome(True, None, "", {"evidence": "AWS managed anti-DDoS rule group"})
            if statement.get("rule_group_reference_statement") is not None:
                unknown = True
        if not rule.known and rule.get("statement") is None:
            unknown = True
    return UNKNOWN if unknown else Outcome(False)


def alarm_feeds_composite(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A metric alarm without actions may still notify through a composite alarm: None when the
    project has composite alarms, False otherwise."""
    if _project_resources(project, (_COMPOSITE,)):
        return UNKNOWN
    return Outcome(False)


# ------------------------------------------------------------------------------- monitoring, DNS


def tf_first_in_module(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """For ``where``: the subject is the first resource of ``args.types`` in its module that
    certainly exists, so that a module-wide absence is reported once."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    candidates = [
        b for b in _module_resources(project, module, args["types"]) if instantiated(module, b)
    ]
    if not candidates:
        return Outcome(False)
    first = min(candidates, key=lambda b: (b.path, b.span.start_line))
    return Outcome(first is block)


_ALARM_TYPES = ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm")
_MONITORING_WORDS = ("alarm", "monitor", "cloudwatch", "datadog", "newrelic", "grafana", "observab")
_MONITORING_SOURCE = re.compile("|".join(_MONITORING_WORDS), re.IGNORECASE)


def alarms_in_project(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The project defines CloudWatch alarms somewhere (or calls a monitoring module)."""
    # Project-wide: asked for every database and load balancer, answered once.
    outcome: Outcome = project.memo("alarms_in_project", lambda: _alarms(project))
    return outcome


def _alarms(project: Project) -> Outcome:
    alarms = _project_resources(project, _ALARM_TYPES)
    if alarms:
        block = alarms[0][1]
        return Outcome(True, None, "", {"evidence": block.address}, (_related(block, "alarm"),))
    for _, block in _all_blocks(project):
        sign = _monitoring(block)
        if sign is not None:
            return sign
    return Outcome(False)


def _monitoring(block: Block) -> Outcome | None:
    """What a block says of monitoring where the project has no alarm: a monitoring-looking
    module call leaves it undecided, a monitoring vendor's resource meets it; None: nothing."""
    if block.type == "module":
        source = _known_str(block.body.get("source")) or ""
        if _MONITORING_SOURCE.search(source) or _MONITORING_SOURCE.search(
            block.labels[0] if block.labels else ""
        ):
            return UNKNOWN
    if block.type == "resource" and _rtype(block).startswith(("datadog_", "newrelic_", "grafana_")):
        return Outcome(True, None, "", {"evidence": block.address})
    return None


# --- what a part of the tree is told of the whole (terraform_parts.py)


@dataclass(frozen=True)
class WideStage:
    """One step of a project-wide question: only a module with a file whose text holds one of
    ``markers`` (or an escape, which can hide any) can change its answer. With ``settles``,
    the answer is the first found in module order: the first module where it holds decides,
    and later ones are not needed. A question's next stage is asked only when no module
    settled this one."""

    markers: tuple[str, ...]
    settles: Callable[[TerraformModule], bool] | None
    ignore_case: bool = False


# Every question a Terraform rule asks of the whole tree rather than of its own module, in
# stages; wide_answers gives their answers. A part of the tree is judged with the answers
# worked out from the modules these name (terraform_parts.py).
WIDE_QUESTIONS: tuple[tuple[WideStage, ...], ...] = (
    (  # alarms_in_project
        WideStage(_ALARM_TYPES, lambda m: _has_resource(m, _ALARM_TYPES)),
        WideStage(
            _MONITORING_WORDS,
            lambda m: any(_monitoring(b) is not None for b in m.blocks),
            ignore_case=True,
        ),
    ),
    (  # rds_cross_region_backup
        WideStage(_REPLICATED, _replicates),
        WideStage(
            ("aws_backup_plan",),
            lambda m: any(
                _copies(b)
                for b in m.blocks
                if b.type == "resource" and b.labels[:1] == ("aws_backup_plan",)
            ),
        ),
    ),
    (WideStage((_COMPOSITE,), lambda m: _has_resource(m, (_COMPOSITE,))),),  # alarm_feeds_...
    (WideStage((_ACCOUNT_BLOCK,), None),),  # s3_public_access_block
)


def wide_answers(project: Project) -> dict[Hashable, Any]:
    """The answers to WIDE_QUESTIONS, as the memo keys the predicates ask them under."""
    return {
        "alarms_in_project": _alarms(project),
        "rds_cross_region_backup": _cross_region_backup(project),
        ("terraform_resources_of", frozenset({_COMPOSITE})): _project_resources(
            project, (_COMPOSITE,)
        ),
        ("terraform_resources_of", frozenset({_ACCOUNT_BLOCK})): _project_resources(
            project, (_ACCOUNT_BLOCK,)
        ),
    }


_ADDRESS_RECORDS = frozenset({"A", "AAAA", "CNAME"})


def route53_zone_has_caa(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A public zone (resource or data source) that gets A/AAAA/CNAME records in this module
    also gets a CAA record. None when the zone gets no address records here, or a record's
    zone or type cannot be read."""
    node = _node(subject)
    if node is None:
        return UNKNOWN
    module, block = node
    if block.body.get("vpc") is not None or _truth(_attr(module, block, "private_zone")) is True:
        return UNKNOWN  # a private zone: no public CA issues for it
    links = attached(project, module, block, ("aws_route53_record",), "zone_id")
    address: list[Block] = []
    unknown = False
    for record in links.found:
        kind = _known_str(_attr(module, record, "type"))
        if kind is None:
            unknown = True
        elif kind.upper() == "CAA":
            if instantiated(module, record) is not False:
                return Outcome(
                    True, None, "", {"evidence": record.address}, (_related(record, "CAA record"),)
                )
        elif kind.upper() in _ADDRESS_RECORDS and instantiated(module, record):
            address.append(record)
    for record in links.undecided:
        kind = _known_str(_attr(module, record, "type"))
        if kind is None or kind.upper() == "CAA":
            unknown = True
    if unknown or not address:
        return UNKNOWN
    names = ", ".join(_known_str(_attr(module, r, "name")) or r.address for r in address[:3])
    return Outcome(
        False,
        None,
        "",
        {"records": names},
        tuple(_related(r, "address record") for r in address[:3]),
    )


PREDICATES: dict[str, Predicate] = {
    "tf_instantiated": tf_instantiated,
    "tf_attr_set": tf_attr_set,
    "tf_production_looking": tf_production_looking,
    "tf_first_in_module": tf_first_in_module,
    "tf_secret_attr": tf_secret_attr,
    "tf_variable_secret": tf_variable_secret,
    "tf_secret_named": tf_secret_named,
    "s3_bucket_has": s3_bucket_has,
    "s3_holds_primary_data": s3_holds_primary_data,
    "s3_public_access_block": s3_public_access_block,
    "s3_policy_not_public_write": s3_policy_not_public_write,
    "sg_ingress_subject": sg_ingress_subject,
    "sg_not_world_open": sg_not_world_open,
    "rds_has_replica": rds_has_replica,
    "rds_parameter_set": rds_parameter_set,
    "rds_cross_region_backup": rds_cross_region_backup,
    "elasticache_redis_auth": elasticache_redis_auth,
    "lb_public_application": lb_public_application,
    "lb_has_https_listener": lb_has_https_listener,
    "lb_public_http_listener": lb_public_http_listener,
    "lb_listener_redirects_https": lb_listener_redirects_https,
    "lb_waf_associated": lb_waf_associated,
    "alarms_in_project": alarms_in_project,
    "alarm_feeds_composite": alarm_feeds_composite,
    "waf_rate_limited": waf_rate_limited,
    "route53_zone_has_caa": route53_zone_has_caa,
}
