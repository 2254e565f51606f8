"""Each parser adapter: exact spans, the format's own quirks, and bad input as a Problem."""

from __future__ import annotations

import pytest

from policyscan.model import Artifact, Kind, Span
from policyscan.parsers import parse


def _doc(kind: Kind, path: str, text: str):  # type: ignore[no-untyped-def]
    return parse(Artifact(path, "/nonexistent/" + path, kind), text)


def test_env_lines_skip_leading_blank_lines_and_handle_export_quotes_multiline() -> None:
    doc = _doc(Kind.ENV, ".env", "A=1\n\n\n  export B = \"two\"\r\nC='x\ny'\nD=4 # comment\n=bad\n")
    got = {e.name: (e.value, e.name_span.start_line, e.value_span.start_col) for e in doc.entries}
    assert got == {"A": ("1", 1, 3), "B": ("two", 4, 14), "C": ("x\ny", 5, 3), "D": ("4", 7, 3)}
    assert [(p.span.start_line, p.code) for p in doc.problems] == [(8, "parse-error")]


def test_compose_merge_keys_anchors_yaml11_booleans_and_raw_text() -> None:
    text = (
        "x-logging: &logging\n  driver: json-file\n  options:\n    max-size: 10m\n"
        "services:\n  web:\n    <<: *logging\n    environment:\n      DEBUG: yes\n"
        "    ports: [5432:5432]\n"
    )
    doc = _doc(Kind.COMPOSE, "docker-compose.yml", text)
    web = doc.services()["web"]
    assert web.lookup("options.max-size").data == "10m"
    assert web.lookup("options.max-size").span.start_line == 4  # where the anchor defines it
    debug = web.lookup("environment.DEBUG")
    assert debug.data is True and debug.text == "yes" and debug.span == Span(9, 14, 9, 17)
    assert web.lookup("ports.0").as_str() == "5432:5432"  # base 60 in YAML 1.1: keep the text


def test_compose_syntax_error_and_alias_bomb_are_problems() -> None:
    broken = _doc(Kind.COMPOSE, "c.yml", "services:\n  web: [\n")
    assert broken.root is None and broken.problems[0].span.start_line == 3
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n"
        for i in range(8)
    )
    doc = _doc(Kind.COMPOSE, "c.yml", bomb)
    assert doc.root is None and doc.problems[0].code == "too-complex"


def test_terraform_literals_references_heredocs_dynamic_blocks() -> None:
    text = (
        'resource "aws_db_instance" "db" {\n'
        "  backup_retention_period = var.days\n"
        "  multi_az = true\n"
        '  tags = { Name = "x" }\n'
        '  dynamic "ingress" {\n'
        "    for_each = var.rules\n"
        "    content { from_port = 22 }\n"
        "  }\n"
        "  policy = <<-EOT\n"
        '    {"a": 1}\n'
        "  EOT\n"
        "  port = -1\n"
        '  name = "${var.env}-db"\n'
        "}\n"
    )
    doc = _doc(Kind.TERRAFORM, "main.tf", text)
    (block,) = doc.blocks
    assert block.address == "aws_db_instance.db" and block.span.start_line == 1
    body = block.body
    days = body.get("backup_retention_period")
    assert (
        days is not None
        and not days.known
        and days.text == "var.days"
        and days.span.start_line == 2
    )
    assert body.get("multi_az").data is True
    assert body.lookup("tags.Name").data == "x"
    ingress = body.get("ingress")
    assert ingress is not None and ingress.data[0].known is False  # dynamic: shape known, count not
    assert body.get("policy").data == '{"a": 1}\n'
    assert body.get("port").data == -1
    assert body.get("name").known is False
    assert not doc.problems


def test_terraform_syntax_error_is_located() -> None:
    doc = _doc(Kind.TERRAFORM, "main.tf", 'resource "x" "y" {\n  a = 1\n')
    # Reported where the unclosed block opens: that is the line to fix.
    assert [(p.span.start_line, "never closed" in p.message) for p in doc.problems] == [(1, True)]


def test_dockerfile_stages_heredocs_args_and_env_lines() -> None:
    text = (
        "ARG BASE=python:3.12-slim\n"
        "FROM ${BASE} AS build\n"
        "RUN <<EOF\npip wheel .\nEOF\n"
        "FROM python:3.12-slim\n"
        "ENV A=1 \\\n    SECRET_KEY=abc\n"
        "COPY --from=build /w /w\n"
        "USER app\n"
    )
    doc = _doc(Kind.DOCKERFILE, "Dockerfile", text)
    assert [(s.image, s.alias, s.span.start_line) for s in doc.stages] == [
        ("${BASE}", "build", 2),
        ("python:3.12-slim", None, 6),
    ]
    assert [(a.name, a.span.start_line) for a in doc.global_args] == [("BASE", 1)]
    final = doc.final
    assert final is not None
    assert [(a.name, a.value, a.span.start_line) for a in final.assignments] == [
        ("A", "1", 7),
        ("SECRET_KEY", "abc", 8),
    ]
    assert doc.stages[0].instructions[1].heredocs == ("pip wheel .\n",)
    assert final.instructions[2].flag("from") == "build"


def test_dockerfile_unterminated_heredoc_is_a_problem() -> None:
    doc = _doc(Kind.DOCKERFILE, "Dockerfile", "FROM x\nRUN <<EOF\necho\n")
    assert doc.problems and "heredoc" in doc.problems[0].message


def test_nginx_never_reads_includes_itself_and_reports_unbalanced_braces() -> None:
    doc = _doc(
        Kind.NGINX,
        "nginx.conf",
        "http {\n  include /etc/passwd;\n  server {\n    listen 443 ssl;\n  }\n}\n",
    )
    (http,) = doc.directives
    assert http.block is not None
    assert [d.name for d in http.block] == ["include", "server"]
    assert http.block[1].span.start_line == 3
    broken = _doc(Kind.NGINX, "nginx.conf", "server {\n  listen 80;\n")
    # Reported where the unclosed block opens, like the Terraform adapter does.
    assert [(p.span.start_line, "never closed" in p.message) for p in broken.problems] == [
        (1, True)
    ]


def test_nginx_parse_leaves_no_large_cycle_for_the_collector() -> None:
    """A scan runs without the cyclic collector (cli.console): crossplane's payload, held in a
    cycle by its nested functions, must be freed by the adapter, not left for a collection."""
    import gc

    text = "http {\n" + "".join(f"  add_header X-{i} v{i} always;\n" for i in range(400)) + "}\n"
    gc.collect()
    gc.disable()
    try:
        doc = _doc(Kind.NGINX, "nginx.conf", text)
        left = gc.collect()
    finally:
        gc.enable()
    assert len(doc.directives[0].block or []) == 400
    # The cycle itself (crossplane's functions and their cells) stays: a few dozen objects,
    # where the payload's 400 directives were over a thousand.
    assert left < 100


@pytest.mark.parametrize("padding", [100, 10_000], ids=["one chunk", "many chunks"])
def test_terraform_parse_keeps_nothing_of_the_file_it_read(padding: int) -> None:
    """py-tree-sitter keeps a reference to every object the parse's read callback returns: the
    adapter hands it one reused buffer, so that no file's bytes (a file of one chunk) or chunks
    (a larger one) outlive its parse."""
    import gc
    import tracemalloc

    text = 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n' + "# padding line\n" * padding
    _doc(Kind.TERRAFORM, "main.tf", text)  # spans and names shared by every later parse
    tracemalloc.start()
    try:
        # The parser's own buffers, allocated once while traced, are not what is measured:
        # what 20 more parses keep is.
        _doc(Kind.TERRAFORM, "main.tf", text)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            _doc(Kind.TERRAFORM, "main.tf", text)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Parses that each kept the file would keep 20 times its size.
    assert kept < len(text)


def test_names_repeated_across_files_are_one_string() -> None:
    """Attribute names, block types, labels and references are interned by the Terraform
    adapter, directive names and arguments by the nginx one, and mapping keys by the YAML
    reader: a tree repeats them, and a string each was a third of the documents' memory."""
    tf = [
        _doc(Kind.TERRAFORM, f"{n}.tf", 'resource "aws_s3_bucket" "b" {\n  bucket = var.name\n}\n')
        for n in ("a", "b")
    ]
    first, second = (d.blocks[0] for d in tf)
    assert first.type is second.type and first.labels[0] is second.labels[0]
    key_a, key_b = (next(iter(b.body.data)) for b in (first, second))  # type: ignore[arg-type]
    assert key_a is key_b
    assert first.body.data["bucket"].text is second.body.data["bucket"].text  # type: ignore[index]
    nginx = [
        _doc(Kind.NGINX, f"{n}.conf", "add_header X-Frame-Options DENY always;\n") for n in "ab"
    ]
    one, two = (d.directives[0] for d in nginx)
    assert one.name is two.name and all(x is y for x, y in zip(one.args, two.args, strict=True))
    compose = [
        _doc(Kind.COMPOSE, f"{n}/docker-compose.yml", "services:\n  web:\n    image: x\n")
        for n in "ab"
    ]
    keys = [next(iter(d.services()["web"].data)) for d in compose]
    assert keys[0] is keys[1]
