"""Property tests for every parser adapter (issue 7): any text gives a document, with a parse
problem when the text is not valid, and never another exception; every Span lies inside the file.

Inputs come from three places: arbitrary text; a soup of each syntax's own tokens (so the
parsers get past their first character); and the fixtures' real files, mutated (cut, doubled,
spliced). The full pipeline gets the same treatment: a one-file tree scanned with every rule
never raises (the project view and the rules see whatever the parsers made of the junk).

Settings are derandomized so CI sees the same examples on every run; benchmarks/fuzz_parsers.py
runs the same kind of inputs for as long as a person wants.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyscan import parsers
from policyscan.discover import classify
from policyscan.model import Artifact, Kind, Span, Value
from policyscan.policy.loader import Rule, load_policies
from policyscan.scan import ScanOptions, scan
from policyscan.source import Unreadable, decode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

PROPERTY = settings(
    max_examples=150,
    deadline=None,  # no speed assertions: a slow example is not a failure
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The file names each adapter is reached by (terraform has three dialects).
NAMES: dict[str, Kind] = {
    "docker-compose.yml": Kind.COMPOSE,
    ".env": Kind.ENV,
    "main.tf": Kind.TERRAFORM,
    "main.tf.json": Kind.TERRAFORM,
    "prod.tfvars": Kind.TERRAFORM,
    "Dockerfile": Kind.DOCKERFILE,
    "nginx.conf": Kind.NGINX,
}

TOKENS: dict[Kind, list[str]] = {
    Kind.COMPOSE: [
        "services:",
        "web:",
        "db:",
        "image: ",
        "environment:",
        "ports:",
        "volumes:",
        "- ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        ": ",
        "&a ",
        "*a",
        "<<: ",
        "<<: [*a, *b]",
        "&b ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "|",
        ">-",
        "# c",
        "!!str ",
        "!!binary ",
        "? ",
        "---",
        "...",
        "yes",
        "0x1F",
        "1_000",
        "0o17",
        "012",
        "12:30:00",
        ".inf",
        "~",
        "null",
        "${X}",
        "${X:-d}",
        "$$",
        "%TAG",
        "DEBUG: ",
        "- DEBUG=1",
        "env_file: .env",
        "\\u2028",
        "\u2028",
        "\x85",
        "\ufeff",
        "9" * 400,
        "0x" + "f" * 300,
        "0o" + "7" * 400,
        "1e999",
        "-0b101",
    ],
    Kind.ENV: [
        "DEBUG",
        "=",
        "true",
        "export ",
        "SECRET_KEY",
        "'",
        '"',
        "\\",
        "\\n",
        "#",
        " # c",
        "\n",
        "\r\n",
        "\r",
        "\t",
        " ",
        "${A}",
        "$A",
        "A=",
        "=\n",
        '"\n',
        "'''",
        "===",
        "\ufeff",
        "\x0c",
        "\u2028",
        "key with space",
        "ü",
        "not an assignment\r\n",
        "a {\r\n",
    ],
    Kind.TERRAFORM: [
        'resource "aws_db_instance" "db" ',
        'variable "x" ',
        "locals ",
        'dynamic "d" ',
        "content ",
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "=",
        " = ",
        "\n",
        "\r\n",
        "\t",
        '"',
        "${",
        "%{",
        "~}",
        "<<EOF\n",
        "<<-EOF\n",
        "EOF\n",
        "var.x",
        "local.y",
        "for x in y : x",
        "? 1 : 2",
        "-",
        "1",
        "1.5e3",
        "true",
        "null",
        "#",
        "//",
        "/*",
        "*/",
        ",",
        ":",
        "backup_retention_period = ",
        "count = ",
        "\\",
        "\\u00e9",
        "$${",
        "9" * 400,
    ],
    Kind.DOCKERFILE: [
        "FROM ",
        "python:3.12",
        " AS build",
        "RUN ",
        "ENV ",
        "ARG ",
        "COPY ",
        "--from=build ",
        "USER ",
        "HEALTHCHECK ",
        "CMD ",
        "ENTRYPOINT ",
        '["a", "b"]',
        "[",
        "<<EOF\n",
        "<<-EOF\n",
        "EOF\n",
        "\\\n",
        "\n",
        "\r\n",
        "\t",
        " ",
        "A=1",
        'B="x y"',
        "=",
        "# syntax=x\n",
        "# escape=`\n",
        "--s\u6800 ",
        "--é=1 ",
        "`\n",
        "apt-get install -y gcc",
        "$A",
        "${A:-b}",
        "ONBUILD ",
        "#",
    ],
    Kind.NGINX: [
        "http",
        "server",
        "location",
        "/",
        "~*",
        "\\.php$",
        "{",
        "}",
        ";",
        " ",
        "\n",
        "\r\n",
        "\t",
        "listen 443 ssl",
        "add_header",
        "Strict-Transport-Security",
        '"max-age=1"',
        "always",
        "include",
        "/etc/nginx/mime.types",
        "../../x",
        "*.conf",
        "'",
        '"',
        "\\",
        "#",
        "$http_origin",
        "if ($x) ",
        "map $a $b ",
        "upstream u ",
        "proxy_pass http://u",
        "${",
        "lua_block {",
    ],
}


def _corpus() -> dict[Kind, list[str]]:
    """The fixtures' own files, by kind: realistic starting points for mutation."""
    out: dict[Kind, list[str]] = {kind: [] for kind in Kind}
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(FIXTURES).as_posix()
        found = classify(rel, path.read_bytes()[:4096])
        if found is not None:
            out[found[0]].append(path.read_text("utf-8"))
    return out


CORPUS = _corpus()


def _token_soup(kind: Kind) -> st.SearchStrategy[str]:
    piece = st.sampled_from(TOKENS[kind]) | st.text(max_size=4)
    return st.lists(piece, max_size=60).map("".join)


def _mutated(kind: Kind) -> st.SearchStrategy[str]:
    """A fixture file with up to five edits: a slice cut, doubled, or replaced by a token."""
    seeds = CORPUS[kind] or [""]

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(seeds))
        for _ in range(draw(st.integers(0, 5))):
            n = len(text)
            i = draw(st.integers(0, n))
            j = draw(st.integers(i, min(n, i + 200)))
            op = draw(st.sampled_from(("cut", "double", "token")))
            if op == "cut":
                text = text[:i] + text[j:]
            elif op == "double":
                text = text[:j] + text[i:j] + text[i:]
            else:
                text = text[:i] + draw(st.sampled_from(TOKENS[kind])) + text[j:]
        return text

    return build()


def _texts(kind: Kind) -> st.SearchStrategy[str]:
    return st.text(max_size=300) | _token_soup(kind) | _mutated(kind)


def _spans(node: object) -> Iterator[tuple[str, Span]]:
    """Every Span anywhere in a document, with the field path that reached it."""
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("doc", node)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, Span):
            yield where, item
            continue
        if isinstance(item, str | bytes | int | float | bool) or item is None:
            continue
        if id(item) in seen:  # YAML aliases share Values
            continue
        seen.add(id(item))
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            for f in dataclasses.fields(item):
                if f.name != "artifact":
                    stack.append((f"{where}.{f.name}", getattr(item, f.name)))
        elif isinstance(item, dict):
            stack.extend((f"{where}[{k!r}]", v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))


def _check_spans(document: object, lines: int) -> None:
    for where, span in _spans(document):
        assert 1 <= span.start_line <= span.end_line <= lines + 1, (where, span, lines)
        assert span.start_col >= 1, (where, span)
        # end_col 0 means "to the end of the line"; otherwise it is a column too.
        assert span.end_col == 0 or span.end_col >= 1, (where, span)
        if span.end_col and span.end_line == span.start_line:
            assert span.end_col >= span.start_col, (where, span)


_ANY_LINE_END = re.compile("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _parse(name: str, text: str) -> object:
    artifact = Artifact(name, "/nonexistent/" + name, NAMES[name])
    document = parsers.parse(artifact, text)  # raising anything at all fails the property
    assert isinstance(document.problems, list)
    for problem in document.problems:
        assert problem.path == name
    return document


def _property(name: str) -> Callable[[], None]:
    kind = NAMES[name]

    @PROPERTY
    @given(text=_texts(kind))
    def raw_text(text: str) -> None:
        # Straight from a caller that did not go through source.decode: still no exception,
        # and spans within the lines under any convention of what ends a line.
        document = _parse(name, text)
        _check_spans(document, len(_ANY_LINE_END.split(text)))

    @PROPERTY
    @given(
        data=_texts(kind).map(lambda t: t.encode("utf-8", "surrogatepass"))
        | st.binary(max_size=300)
    )
    def decoded(data: bytes) -> None:
        # The way a scan calls it: bytes read, decoded (or refused), then parsed. Lines are
        # then exactly what "\n" ends, for every parser.
        artifact = Artifact(name, "/nonexistent/" + name, kind)
        try:
            text = decode(artifact, data)
        except Unreadable as exc:
            assert 1 <= exc.problem.span.start_line <= data.count(b"\n") + 1
            return
        assert "\r" not in text.replace("\r\n", "")  # one line convention downstream
        document = _parse(name, text)
        _check_spans(document, text.count("\n") + 1)

    def both() -> None:
        raw_text()
        decoded()

    return both


test_compose_adapter = _property("docker-compose.yml")
test_env_adapter = _property(".env")
test_terraform_adapter = _property("main.tf")
test_terraform_json_adapter = _property("main.tf.json")
test_tfvars_adapter = _property("prod.tfvars")
test_dockerfile_adapter = _property("Dockerfile")
test_nginx_adapter = _property("nginx.conf")


def test_yaml_values_keep_their_own_spans_inside_the_file() -> None:
    # The span walker must see nested Values (a regression here would hide every YAML span).
    document = _parse("docker-compose.yml", "services:\n  web:\n    image: x\n")
    assert isinstance(getattr(document, "root", None), Value)
    spans = [span for _, span in _spans(document)]
    assert Span(3, 12, 3, 13) in spans  # the scalar "x", three levels down


@cache
def _rules() -> list[Rule]:
    return load_policies()


@PROPERTY
@given(
    name=st.sampled_from(sorted(NAMES)),
    data=st.data(),
)
def test_a_scan_of_any_one_file_never_raises(name: str, data: st.DataObject) -> None:
    """Parsers, the project view and every rule, on junk: problems, never an exception."""
    text = data.draw(_texts(NAMES[name]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        target = root / "prod" / name
        target.parent.mkdir()
        target.write_bytes(text.encode("utf-8", "surrogatepass"))
        result = scan(_rules(), ScanOptions(paths=(str(root),), root=str(root)))
    lines = text.count("\n") + text.replace("\r\n", "\n").count("\r") + 1
    for problem in result.problems:
        assert problem.code != "parser-error", problem  # a parser's bug, caught by the net
        assert 1 <= problem.span.start_line <= lines + 1, problem
    for finding in result.findings:
        span = finding.location.span
        assert 1 <= span.start_line <= span.end_line <= lines + 1, finding
