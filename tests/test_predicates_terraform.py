"""The Terraform predicates on their own: references between resources, existence under
count/for_each, security group exposure, bucket policy documents, secrets, and the precision
rules (unknown is never a finding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyscan.discover import DiscoveryOptions, discover
from policyscan.model import Span, Value
from policyscan.parsers.terraform import Block
from policyscan.policy.loader import load_policies
from policyscan.policy.predicates import PREDICATES
from policyscan.policy.predicates import terraform as tfp
from policyscan.project import Project, Subject, TerraformModule
from policyscan.scan import ScanOptions, parse_artifact, scan
from tests.conftest import write_tree

RULES = {rule.id: rule for rule in load_policies()}


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    tree: dict[str, str | bytes] = dict(files)
    write_tree(tmp_path, tree)


def _project(tmp_path: Path, files: dict[str, str]) -> Project:
    _write(tmp_path, files)
    found = discover((str(tmp_path),), str(tmp_path), DiscoveryOptions())
    docs = {a.path: parse_artifact(a, 10_000_000)[0] for a in found.artifacts}
    return Project(found.root, found.artifacts, docs)


def _subject(project: Project, address: str, scope: str = "terraform.resource") -> Subject:
    for subject in project.subjects(scope):
        if subject.key == address:
            return subject
    raise AssertionError(f"no subject {address}")


def _module_block(project: Project, address: str) -> tuple[TerraformModule, Block]:
    node = _subject(project, address).node
    assert isinstance(node, tuple)
    return node


def _findings(tmp_path: Path, rule_id: str, files: dict[str, str]) -> list[tuple[str, int, str]]:
    _write(tmp_path, files)
    result = scan([RULES[rule_id]], ScanOptions(paths=(str(tmp_path),)))
    return [(f.location.path, f.location.span.start_line, f.message) for f in result.findings]


def test_every_predicate_is_registered() -> None:
    for name in tfp.PREDICATES:
        assert PREDICATES[name] is tfp.PREDICATES[name]


# ------------------------------------------------------------------------------- existence


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        ("", True),
        ("count = 0", False),
        ("count = 2", True),
        ("count = var.on ? 1 : 0", True),  # var.on defaults to true below
        ("count = var.off ? 1 : 0", False),
        ("count = var.unset ? 1 : 0", None),
        ("count = length(var.names)", None),
        ("for_each = { a = 1 }", True),
        ("for_each = {}", False),
        ("for_each = toset(var.names)", None),
    ],
)
def test_instantiated(tmp_path: Path, count: str, expected: bool | None) -> None:
    project = _project(
        tmp_path,
        {
            "main.tf": 'variable "on" {\n  default = true\n}\nvariable "off" {\n  default = false\n}\n'
            'variable "unset" {}\n'
            f'resource "aws_s3_bucket" "b" {{\n  {count}\n  bucket = "x"\n}}\n',
        },
    )
    module, block = _module_block(project, "aws_s3_bucket.b")
    assert tfp.instantiated(module, block) is expected


# ------------------------------------------------------------------------------- references


def _refers(tmp_path: Path, expression: str) -> bool | None:
    project = _project(
        tmp_path,
        {
            "main.tf": 'variable "bucket" {}\nlocals {\n  media_id = aws_s3_bucket.media.id\n}\n'
            'resource "aws_s3_bucket" "media" {\n  bucket = "acme-media"\n}\n'
            'resource "aws_s3_bucket" "media_old" {\n  bucket = "acme-media-old"\n}\n'
            f'resource "aws_s3_bucket_versioning" "v" {{\n  bucket = {expression}\n}}\n',
        },
    )
    module, target = _module_block(project, "aws_s3_bucket.media")
    _, versioning = _module_block(project, "aws_s3_bucket_versioning.v")
    return tfp.refers(module, versioning.body.get("bucket"), target)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("aws_s3_bucket.media.id", True),
        ("aws_s3_bucket.media[0].id", True),
        ('aws_s3_bucket.media["eu"].bucket', True),
        ('"${aws_s3_bucket.media.arn}/*"', True),
        ("local.media_id", True),
        ('"acme-media"', True),
        ("aws_s3_bucket.media_old.id", False),  # a longer name that starts the same
        ('"acme-media-old"', False),
        ("var.bucket", None),
        ("module.buckets.media_id", None),
        ("data.aws_s3_bucket.media.id", None),
    ],
)
def test_refers(tmp_path: Path, expression: str, expected: bool | None) -> None:
    assert _refers(tmp_path, expression) is expected


def test_a_module_called_by_another_keeps_its_inputs_unknown(tmp_path: Path) -> None:
    """In a module that the scan also calls (`source = "../../"`), a variable default is a
    fallback, not the value: `var.x` stays unknown there, and stays resolved elsewhere."""
    project = _project(
        tmp_path,
        {
            "variables.tf": 'variable "retention" {\n  default = 1\n}\n',
            "main.tf": 'resource "aws_cloudwatch_log_group" "this" {\n  retention_in_days = var.retention\n}\n',
            "examples/complete/main.tf": 'module "logs" {\n  source = "../../"\n}\n',
            "standalone/main.tf": 'variable "retention" {\n  default = 1\n}\n'
            'resource "aws_cloudwatch_log_group" "x" {\n  retention_in_days = var.retention\n}\n',
        },
    )
    called = _subject(project, "aws_cloudwatch_log_group.this").facts.get("retention_in_days")
    alone = _subject(project, "aws_cloudwatch_log_group.x").facts.get("retention_in_days")
    assert called is not None and not called.known
    assert alone is not None and alone.known and alone.data == 1


# ------------------------------------------------------------------------------- security groups


def _rule(protocol: object, low: object, high: object, cidr: str) -> tfp.IngressRule:
    span = Span(1)

    def v(data: object) -> Value:
        return Value(data, "sg.tf", span)  # type: ignore[arg-type]

    return tfp.IngressRule(v(protocol), v(low), v(high), [Value([v(cidr)], "sg.tf", span)])


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        (("tcp", 22, 22, "0.0.0.0/0"), "ssh"),
        (("6", 0, 1024, "::/0"), "ssh"),
        (("tcp", 5432, 5432, "0.0.0.0/0"), "datastore"),
        (("tcp", 6000, 7000, "0.0.0.0/0"), "datastore"),  # contains 6379
        (("udp", 11211, 11211, "0.0.0.0/0"), "datastore"),  # memcached amplification
        (("tcp", 8000, 8000, "0.0.0.0/0"), "other"),
        (("tcp", 80, 443, "0.0.0.0/0"), "other"),  # the range between is open too
        (("tcp", 443, 443, "0.0.0.0/0"), "web"),
        (("udp", 443, 443, "::/0"), "web"),  # HTTP/3
        (("-1", 0, 0, "0.0.0.0/0"), "all"),
        (("all", 0, 0, "0.0.0.0/0"), "all"),
        (("icmp", 8, 0, "0.0.0.0/0"), "icmp"),
    ],
)
def test_classify_world_open(rule: tuple[object, object, object, str], kind: str) -> None:
    exposure = tfp.classify(_rule(*rule))
    assert isinstance(exposure, tfp.Exposure)
    assert exposure.kind == kind


def test_classify_private_and_unknown() -> None:
    assert tfp.classify(_rule("tcp", 22, 22, "10.0.0.0/8")) is False
    assert (
        tfp.classify(_rule("tcp", 22, 22, "0.0.0.0/1")) is False
    )  # half the internet, not "world"
    unknown_port = tfp.IngressRule(
        Value("tcp", "sg.tf", Span(1)),
        Value(None, "sg.tf", Span(1), known=False, text="var.port"),
        Value(22, "sg.tf", Span(1)),
        [Value("0.0.0.0/0", "sg.tf", Span(1))],
    )
    assert tfp.classify(unknown_port) is None
    unknown_cidr = tfp.IngressRule(
        Value("tcp", "sg.tf", Span(1)),
        Value(22, "sg.tf", Span(1)),
        Value(22, "sg.tf", Span(1)),
        [Value(None, "sg.tf", Span(1), known=False, text="var.cidrs")],
    )
    assert tfp.classify(unknown_cidr) is None


def test_one_security_group_reports_its_first_open_ingress_block(tmp_path: Path) -> None:
    files = {
        "sg.tf": 'resource "aws_security_group" "a" {\n'
        '  ingress {\n    from_port = 443\n    to_port = 443\n    protocol = "tcp"\n'
        '    cidr_blocks = ["0.0.0.0/0"]\n  }\n'
        '  ingress {\n    from_port = 22\n    to_port = 22\n    protocol = "tcp"\n'
        '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n'
    }
    got = _findings(tmp_path, "PST020", files)
    assert [(p, line) for p, line, _ in got] == [("sg.tf", 8)]


# ------------------------------------------------------------------------------- bucket policies


def test_jsonencode_policy_points_at_the_principal_line(tmp_path: Path) -> None:
    files = {
        "p.tf": 'resource "aws_s3_bucket_policy" "p" {\n  bucket = "b"\n  policy = jsonencode({\n'
        '    Statement = [\n      {\n        Effect = "Allow"\n'
        '        Principal = { AWS = ["*"] }\n        NotAction = ["s3:GetObject"]\n'
        '        Resource = "*"\n      },\n    ]\n  })\n}\n'
    }
    got = _findings(tmp_path, "PST017", files)
    assert [(p, line) for p, line, _ in got] == [("p.tf", 7)]
    assert "everything but s3:GetObject" in got[0][2]


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ('{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject"}', True),
        (
            '{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}, "Action": ["s3:*"]}',
            True,
        ),
        ('{"Effect": "Allow", "Principal": "*", "Action": "*"}', True),
        (
            '{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"]}',
            False,
        ),
        ('{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}', False),
        (
            '{"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"}',
            False,
        ),
        (
            '{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}',
            False,
        ),
    ],
)
def test_public_write_statement(statement: str, public: bool) -> None:
    policy = Value('{"Version": "2012-10-17", "Statement": [' + statement + "]}", "p.tf", Span(3))
    tree = tfp._json_tree(policy.data, policy)  # type: ignore[arg-type]
    assert tree is not None
    found, _ = tfp.public_write_statement(tree)
    assert (found is not None) is public


def test_policy_from_an_unknown_source_is_not_judged(tmp_path: Path) -> None:
    files = {
        "p.tf": 'variable "policy" {}\nresource "aws_s3_bucket_policy" "p" {\n'
        '  bucket = "b"\n  policy = var.policy\n}\n'
        'resource "aws_s3_bucket_policy" "q" {\n  bucket = "c"\n'
        '  policy = file("policy.json")\n}\n'
    }
    assert _findings(tmp_path, "PST017", files) == []


# ------------------------------------------------------------------------------- S3 links


def test_configuration_under_an_unknown_count_leaves_the_bucket_undecided(tmp_path: Path) -> None:
    files = {
        "s3.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
        'resource "aws_s3_bucket_versioning" "b" {\n  count = var.versioning ? 1 : 0\n'
        "  bucket = aws_s3_bucket.b.id\n  versioning_configuration {\n"
        '    status = "Enabled"\n  }\n}\n'
    }
    assert _findings(tmp_path, "PST010", files) == []


def test_configuration_for_another_bucket_does_not_count(tmp_path: Path) -> None:
    files = {
        "s3.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n'
        'resource "aws_s3_bucket" "b2" {\n  bucket = "b2"\n}\n'
        'resource "aws_s3_bucket_versioning" "b2" {\n  bucket = aws_s3_bucket.b2.id\n'
        '  versioning_configuration {\n    status = "Enabled"\n  }\n}\n'
    }
    assert [(p, line) for p, line, _ in _findings(tmp_path, "PST010", files)] == [("s3.tf", 1)]


def test_tf_json_references_are_followed(tmp_path: Path) -> None:
    """In *.tf.json every expression is a "${...}" string; it is a reference, not a name."""
    files = {
        "s3.tf.json": '{"resource": {'
        '"aws_s3_bucket": {"b": {"bucket": "b"}},'
        '"aws_s3_bucket_versioning": {"b": {"bucket": "${aws_s3_bucket.b.id}",'
        ' "versioning_configuration": [{"status": "Enabled"}]}}}}\n'
    }
    assert _findings(tmp_path, "PST010", files) == []


def test_a_bucket_in_another_module_is_not_configured_by_this_one(tmp_path: Path) -> None:
    """Split resources are matched within the bucket's module (directory) only."""
    files = {
        "a/s3.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = "b"\n}\n',
        "b/s3.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = "other"\n}\n'
        'resource "aws_s3_bucket_versioning" "b" {\n  bucket = aws_s3_bucket.b.id\n'
        '  versioning_configuration {\n    status = "Enabled"\n  }\n}\n',
    }
    assert [(p, line) for p, line, _ in _findings(tmp_path, "PST010", files)] == [("a/s3.tf", 1)]


# ------------------------------------------------------------------------------- secrets


def test_secret_values_never_reach_messages(tmp_path: Path) -> None:
    secret = "hunter2hunter2"
    files = {
        "main.tf": f'variable "db_password" {{\n  default = "{secret}"\n}}\n'
        f'resource "aws_db_instance" "d" {{\n  username = "app"\n  password = "{secret}"\n}}\n'
        f'provider "aws" {{\n  secret_key = "{secret}{secret}{secret}"\n}}\n'
    }
    _write(tmp_path, files)
    rules = [RULES[i] for i in ("PST008", "PST009", "PST070", "PST071", "PST072")]
    result = scan(rules, ScanOptions(paths=(str(tmp_path),)))
    assert sorted(f.rule_id for f in result.findings) == [
        "PST008",
        "PST009",
        "PST070",
        "PST071",
        "PST072",
    ]
    for finding in result.findings:
        assert secret not in finding.message
        assert secret not in (finding.snippet or "")
        assert finding.sensitive


def test_secret_named_variables(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "v.tf": 'variable "db_password" {}\nvariable "password_length" {}\nvariable "token" {}\n'
            'variable "enable_auth_token" {}\n',
        },
    )
    named = {
        s.key: PREDICATES["tf_secret_named"](s.facts, s, project, {}).result
        for s in project.subjects("terraform.variable")
    }
    assert named == {
        "variable.db_password": True,
        "variable.password_length": False,
        "variable.token": True,
        "variable.enable_auth_token": False,
    }


# ------------------------------------------------------------------------------- cross-resource


def test_listener_of_an_unresolvable_load_balancer_is_not_judged(tmp_path: Path) -> None:
    files = {
        "lb.tf": 'variable "lb_arn" {}\nresource "aws_lb_listener" "http" {\n'
        "  load_balancer_arn = var.lb_arn\n  port = 80\n"
        '  default_action {\n    type = "forward"\n  }\n}\n'
    }
    assert _findings(tmp_path, "PST041", files) == []


def test_missing_alarms_are_reported_once_per_module(tmp_path: Path) -> None:
    files = {
        "a.tf": 'resource "aws_db_instance" "b" {\n  engine = "postgres"\n}\n'
        'resource "aws_db_instance" "a" {\n  engine = "postgres"\n}\n',
        "z.tf": 'resource "aws_lb" "web" {\n  name = "x"\n}\n',
    }
    assert [(p, line) for p, line, _ in _findings(tmp_path, "PST061", files)] == [("a.tf", 1)]


def test_caa_record_with_unknown_zone_leaves_the_zone_undecided(tmp_path: Path) -> None:
    files = {
        "dns.tf": 'variable "zone_id" {}\nresource "aws_route53_zone" "z" {\n  name = "x.io"\n}\n'
        'resource "aws_route53_record" "a" {\n  zone_id = aws_route53_zone.z.zone_id\n'
        '  name = "x.io"\n  type = "A"\n  ttl = 60\n  records = ["192.0.2.1"]\n}\n'
        'resource "aws_route53_record" "caa" {\n  zone_id = var.zone_id\n'
        '  name = "x.io"\n  type = "CAA"\n  ttl = 60\n  records = ["0 issue \\"amazon.com\\""]\n}\n'
    }
    assert _findings(tmp_path, "PST065", files) == []
