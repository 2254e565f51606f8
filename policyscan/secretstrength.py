"""Secret strength: which names hold secrets, and whether a committed literal is strong enough.

Checklist items ``security.secrets.*`` (seed: "Generate all production secrets"): a unique
SECRET_KEY of at least 256 bits, database and Redis passwords of 24+ characters that are not
guessable, and object storage credentials that are not placeholders.

Everything here is pure and linear in the size of its input: values can be megabytes long
(a key pasted twice, a certificate in the wrong variable), so every content check looks at a
bounded prefix (``_MAX_ANALYSED`` characters) and only C-speed operations (``set``, slicing,
comparison) ever touch the whole string. No regular expressions are used at all, so no
pattern can backtrack.

The entropy estimator (``_analyse``)
------------------------------------
1. Alphabet size ``C``: 16 when the value looks hex (digits *and* a-f letters, one case);
   64 when it looks base64/base64url (only that alphabet, upper *and* lower case letters,
   ``=`` padding ignored); otherwise the union of the classes used: lowercase 26, uppercase 26,
   digits 10, ASCII symbols and space 33, any non-ASCII character 100.
2. Raw estimate: ``length * log2(C)``.
3. Penalties (zxcvbn-style, much simplified), on the first ``_MAX_ANALYSED`` characters:
   in a run of 3+ identical characters, in a keyboard walk or alphabetical/numeric sequence
   of 4+ characters that keeps one row and one direction (``qwer``, ``abcd``, ``9876``; each
   case on its own), and in a repeat of an earlier substring of 4+ characters, only the first
   character counts. A dictionary word of 4+ letters (leetspeak folded) counts as
   ``_WORD_BITS`` (13) instead of its characters.
4. Credited bits: a hex or base64 shaped value whose penalised estimate keeps at least 80%
   of its raw estimate is credited with the raw estimate. Truly random strings trip the
   penalties by chance: a quarter of random 64-hex keys hold a walk such as "6789", a run
   such as "000" or a word such as "c0de", so without this a freshly generated
   ``token_hex(32)`` would fall below 256 bits one time in four. 80% still rejects anything
   with visible structure.

Thresholds (``_POLICY``)
------------------------
=================  ==========  ========  ================================================
class              min length  min bits  other
=================  ==========  ========  ================================================
signing-key        32          256       ``django-insecure-`` prefix is a known default
database-password  24          64        >= 2 character classes unless length >= 32
redis-password     24          64        >= 2 character classes unless length >= 32
password, token    16          48
aws-secret-key     40          --        only defaults, placeholders, fillers, repeats
=================  ==========  ========  ================================================

Every class but aws-secret-key also fails on: a known default, a placeholder, the user
name, a repeated unit, a value that is mostly keyboard walk or sequence (60% of its
characters in walks of 3+), or nothing but dictionary words around digits and symbols.

The bit floors of the password classes are well below what a minimal random secret of the
minimal length has (24 hex characters: 96 bits; 16 hex: 64): they only catch structure the
checks above missed, such as ``aaaaaaaaaaaaaaaaaaaaaaa1``, and stay clear of the chance
penalties of random strings. At the floor itself a random value would fail now and then.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "WEAKNESS_CODES",
    "SecretClass",
    "Weakness",
    "assess",
    "classify_name",
    "is_reference",
    "redact",
    "reused",
]


class SecretClass(str, Enum):
    SIGNING_KEY = "signing-key"
    DB_PASSWORD = "database-password"
    REDIS_PASSWORD = "redis-password"
    PASSWORD = "password"
    TOKEN = "token"
    AWS_SECRET = "aws-secret-key"


@dataclass(frozen=True)
class Weakness:
    reason: str  # for people; never contains the value
    code: str  # stable, one of WEAKNESS_CODES


WEAKNESS_CODES = frozenset(
    {
        "default",
        "placeholder",
        "equals-username",
        "repeated",
        "sequence",
        "dictionary",
        "too-short",
        "low-variety",
        "low-entropy",
    }
)

# ----------------------------------------------------------------------------- names

# A name is a secret when its head noun (last segment, after dropping environment qualifiers
# such as _PROD or _2) is a secret noun. Metadata about a secret (PASSWORD_MIN_LENGTH,
# SECRET_KEY_FILE, TOKEN_EXPIRE_MINUTES, REDIS_URL, AWS_ACCESS_KEY_ID) has another head, so
# it is rejected without a list of every metadata word.
_QUALIFIERS = frozenset(
    {
        "prod",
        "production",
        "dev",
        "development",
        "staging",
        "stage",
        "stg",
        "qa",
        "uat",
        "test",
        "testing",
        "local",
        "live",
        "sandbox",
        "new",
        "old",
        "current",
        "curr",
        "previous",
        "prev",
        "next",
        "primary",
        "secondary",
        "backup",
        "fallback",
        "wo",  # terraform write-only arguments: password_wo
        "value",
        "val",
        "raw",
        "plain",
        "plaintext",
        "literal",
        "override",
        "b64",
        "base64",
        "hex",
    }
)

# Words that make the whole name a switch, not a secret: MYSQL_RANDOM_ROOT_PASSWORD=yes,
# MYSQL_ALLOW_EMPTY_PASSWORD, manage_master_user_password = true, create_random_password.
_FLAG_WORDS = frozenset(
    {
        "manage",
        "managed",
        "allow",
        "empty",
        "random",
        "generate",
        "generated",
        "create",
        "enable",
        "enabled",
        "disable",
        "disabled",
        "use",
        "no",
        "skip",
        "require",
        "required",
        "is",
        "has",
        "should",
        "show",
        "hide",
    }
)

_PASSWORD_HEADS = frozenset({"password", "passwd", "passwords", "pass", "pwd", "pw"})
# PWD is the shell's working directory and PASS a command: these heads need a qualifier.
_PASSWORD_HEADS_NEEDING_PREFIX = frozenset({"pass", "pwd", "pw"})

_DB_MARKERS = frozenset(
    {
        "postgres",
        "postgresql",
        "pg",
        "psql",
        "mysql",
        "mariadb",
        "maria",
        "mongo",
        "mongodb",
        "initdb",
        "db",
        "database",
        "rds",
        "aurora",
        "sql",
        "mssql",
        "sqlserver",
        "sa",
        "master",
        "couchdb",
        "cockroach",
        "cockroachdb",
        "clickhouse",
        "cassandra",
        "influxdb",
        "neo4j",
        "oracle",
        "timescale",
        "timescaledb",
    }
)
_REDIS_MARKERS = frozenset({"redis", "valkey", "keydb", "elasticache"})
# S3-compatible storage secrets are the same kind of credential as AWS's.
_OBJECT_STORAGE_MARKERS = frozenset(
    {"aws", "s3", "minio", "storage", "spaces", "r2", "b2", "wasabi", "boto"}
)
_SIGNING_MARKERS = frozenset({"jwt", "session", "signing", "cookie", "hmac"})
_SIGNING_KEY_PREFIXES = frozenset(
    {"signing", "hmac", "app", "jwt", "session", "cookie", "encryption", "fernet"}
)

# Compound single words, longest suffix first so "secretkey" wins over "key"-less "secret".
_COMPOUND_SUFFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("secretkey", ("secret", "key")),
    ("password", ("password",)),
    ("passwd", ("passwd",)),
    ("apikey", ("api", "key")),
    ("token", ("token",)),
    ("secret", ("secret",)),
)
# htpasswd is a file of hashes; NOPASSWD is sudoers syntax.
_NOT_SECRETS = frozenset({"htpasswd", "nopasswd"})


def _name_segments(name: str) -> list[str]:
    """Lower-case words of ``name``: split on anything but ASCII letters and digits, and on
    camelCase boundaries (``masterUserPassword``, ``JWTSecret``)."""
    segments: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(name):
        if not (ch.isascii() and ch.isalnum()):
            if current:
                segments.append("".join(current).lower())
                current = []
            continue
        if current:
            prev = name[i - 1]
            nxt = name[i + 1] if i + 1 < len(name) else ""
            starts_word = ch.isupper() and (
                prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower())
            )
            if starts_word:
                segments.append("".join(current).lower())
                current = []
        current.append(ch)
    if current:
        segments.append("".join(current).lower())
    return segments


def _is_qualifier(segment: str) -> bool:
    if segment in _QUALIFIERS or segment.isdigit():
        return True
    return len(segment) > 1 and segment[0] == "v" and segment[1:].isdigit()


@functools.lru_cache(maxsize=8192)  # every rule asks about every variable name
def classify_name(name: str) -> SecretClass | None:
    """The secret class a variable / attribute of this name holds, or None if it is no secret.

    Case-insensitive, with one exception: exactly ``secret_key`` (all lower case, the
    Terraform AWS provider and boto attribute) is an AWS secret key, while ``SECRET_KEY`` in
    any other spelling is a framework signing key (Django, Flask, FastAPI templates).
    """
    if name == "secret_key":
        return SecretClass.AWS_SECRET
    segments = _name_segments(name)
    while len(segments) > 1 and _is_qualifier(segments[-1]):
        segments.pop()
    if not segments:
        return None
    head = segments[-1].rstrip("0123456789") or segments[-1]
    if head in _NOT_SECRETS:
        return None
    if head in {"requirepass", "masterauth"}:  # redis.conf directives
        return SecretClass.REDIS_PASSWORD
    segments[-1] = head
    if head not in _PASSWORD_HEADS and head not in {"token", "secret", "key"}:
        for suffix, parts in _COMPOUND_SUFFIXES:
            if head.endswith(suffix) and len(head) > len(suffix):
                segments[-1:] = [head[: -len(suffix)], *parts]
                break
    head = segments[-1]
    prev = segments[-2] if len(segments) > 1 else ""
    words = frozenset(segments)
    if any(segment in _FLAG_WORDS for segment in segments[:-1]):
        return None

    if head in _PASSWORD_HEADS:
        if head in _PASSWORD_HEADS_NEEDING_PREFIX and len(segments) < 2:
            return None
        if words & _REDIS_MARKERS:
            return SecretClass.REDIS_PASSWORD
        # A bare `password` is the Terraform database argument (aws_db_instance).
        if words & _DB_MARKERS or segments == ["password"]:
            return SecretClass.DB_PASSWORD
        return SecretClass.PASSWORD
    if head == "token":
        if segments == ["auth", "token"] or words & _REDIS_MARKERS:
            return SecretClass.REDIS_PASSWORD  # aws_elasticache_replication_group.auth_token
        return SecretClass.TOKEN
    if head == "key":
        if prev == "secret":
            if words & _OBJECT_STORAGE_MARKERS:
                return SecretClass.AWS_SECRET
            return SecretClass.SIGNING_KEY
        if prev == "access" and "secret" in words:  # AWS_SECRET_ACCESS_KEY
            return SecretClass.AWS_SECRET
        if prev in _SIGNING_KEY_PREFIXES:
            return SecretClass.SIGNING_KEY
        if prev == "api":
            return SecretClass.TOKEN
        return None  # ACCESS_KEY, SSH_KEY, PRIVATE_KEY: not a shared secret we can judge
    if head == "base" and segments[-3:-1] == ["secret", "key"]:  # Rails SECRET_KEY_BASE
        return SecretClass.SIGNING_KEY
    if head == "secret":
        if words & _SIGNING_MARKERS:
            return SecretClass.SIGNING_KEY
        if "aws" in words:
            return SecretClass.AWS_SECRET
        return SecretClass.TOKEN
    return None


# ----------------------------------------------------------------------------- references


_REFERENCE_PREFIXES = (
    "vault:",
    "ssm:",
    "secretsmanager:",
    "op://",  # 1Password CLI secret references
    "/run/secrets/",
    "@microsoft.keyvault(",
)
_TERRAFORM_REFERENCE_PREFIXES = (
    "var.",
    "local.",
    "data.",
    "module.",
    "random_password.",
    "random_string.",
    "random_id.",
    "random_bytes.",
)
_TERRAFORM_REFERENCE_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.[]\"'*"
)
_MAX_REFERENCE = 4096  # longer than any real reference; keeps the scan bounded


def _is_identifier_start(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalpha())


def _is_identifier_char(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


def _only_interpolations(value: str) -> bool:
    """``${VAR}``, ``${VAR:-x}``, ``$VAR`` and concatenations of them, nothing else
    (``value`` is not empty)."""
    i = 0
    n = len(value)
    while i < n:
        if value[i] != "$" or i + 1 >= n:
            return False
        if value[i + 1] == "{":
            if i + 2 >= n or not _is_identifier_start(value[i + 2]):
                return False
            depth = 1
            j = i + 2
            while j < n and depth:
                if value[j] == "{":
                    depth += 1
                elif value[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                return False
            i = j
        elif _is_identifier_start(value[i + 1]):
            j = i + 2
            while j < n and _is_identifier_char(value[j]):
                j += 1
            i = j
        else:
            return False
    return True


def is_reference(value: str) -> bool:
    """True when ``value`` names where a secret comes from instead of being one.

    Empty (or blank), a whole-value ``${VAR}`` / ``$VAR`` interpolation (with any compose
    modifier, or several concatenated), a template expression ``{{ secrets.X }}`` /
    ``${{ secrets.X }}`` (unless its content is itself a placeholder such as
    ``{{ CHANGE_ME }}``), ``$(command)``, ``vault:``, ``ssm:``, ``secretsmanager:``,
    ``op://``, ``/run/secrets/``, Secrets Manager or SSM ARNs, sops ``ENC[...]`` values, and
    bare Terraform references (``var.x``, ``random_password.db.result``).
    A value that mixes a literal with an interpolation (``pre-${X}``) is not a reference.
    """
    text = value.strip()
    if not text:
        return True
    lowered = text[:64].lower()
    if lowered.startswith(_REFERENCE_PREFIXES):
        return True
    if lowered.startswith("arn:"):
        parts = lowered.split(":", 3)
        return len(parts) > 2 and parts[2] in {"secretsmanager", "ssm"}
    if len(text) > _MAX_REFERENCE:
        return False
    if text.startswith("ENC[") and text.endswith("]"):
        return True
    if text.startswith("${{") and text.endswith("}}"):
        return True
    if text.startswith("{{") and text.endswith("}}"):
        inner = text[2:-2].strip()
        return bool(inner) and _placeholder_reason(inner) is None
    if text.startswith("$(") and text.endswith(")"):
        return True
    if text.startswith("$"):
        return _only_interpolations(text)
    if text.startswith(_TERRAFORM_REFERENCE_PREFIXES):
        return all(ch in _TERRAFORM_REFERENCE_CHARS for ch in text)
    return False


# ----------------------------------------------------------------------------- redaction


def redact(value: str) -> str:
    """``ch******** (16 chars)``: at most the first two characters (only from 12 characters
    on, where two characters leave enough unknown), a fixed mask and the length.

    The result depends on nothing but ``len(value)`` and, from 12 characters, ``value[:2]``.
    """
    shown = value[:2] if len(value) >= 12 else ""
    return f"{shown}{'*' * 8} ({len(value)} chars)"


# ----------------------------------------------------------------------------- reuse


def reused(values: Mapping[str, str], *, salt: bytes | None = None) -> dict[str, list[str]]:
    """Groups of keys whose literal values are equal, for values used by two or more keys.

    The group key is the hex SHA-256 of a salt and the value. The salt is random per call
    unless given: a plain SHA-256 of a weak secret ("changeme") is reversed by a lookup, so
    the group keys must not be comparable across runs unless the caller asks for it.
    Reference values (``is_reference``) are skipped: ``${DB_PASSWORD}`` in two places is the
    same source, not a reused literal. Values compare exactly (no stripping, case-sensitive).
    Groups are ordered by their sorted key lists.
    """
    pepper = secrets.token_bytes(16) if salt is None else salt
    groups: dict[str, list[str]] = {}
    for key, value in values.items():
        if is_reference(value):
            continue
        digest = hashlib.sha256(pepper + value.encode("utf-8", "surrogatepass")).hexdigest()
        groups.setdefault(digest, []).append(key)
    shared = {digest: sorted(keys) for digest, keys in groups.items() if len(keys) >= 2}
    return dict(sorted(shared.items(), key=lambda item: item[1]))


# ----------------------------------------------------------------------------- weak values


def _normalise(text: str) -> str:
    """Lower case, ASCII letters and digits only: "Change-Me!" == "changeme"."""
    lowered = text.lower()
    if lowered.isascii():
        # The same characters dropped as below, at C speed: every assessment normalises
        # several times.
        return lowered.translate(_ASCII_NOT_ALNUM)
    return "".join(ch for ch in lowered if ch.isascii() and ch.isalnum())


_ASCII_NOT_ALNUM = dict.fromkeys(i for i in range(128) if not chr(i).isalnum())


# ASCII only: str.lower() may lengthen non-ASCII text ("\u0130"), and the estimator indexes
# the folded text with the original's positions.
_LEET = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ01345@$7", "abcdefghijklmnopqrstuvwxyzoieasast")


def _deleet(text: str) -> str:
    """ASCII lower case with leetspeak digits and symbols folded to letters ("P@ssw0rd")."""
    return text.translate(_LEET)


# Defaults from framework and image documentation, placeholders from .env templates, and the
# head of the public common-password lists. Compared after _normalise (and its leetspeak
# folding), so spelling variants ("Change_Me", "P@ssw0rd") need no entry of their own.
_KNOWN_WEAK_RAW = (
    # placeholders and template values
    "changeme",
    "changethis",
    "changeit",
    "changeme123",
    "changemeplease",
    "pleasechangeme",
    "replace-me",
    "replacethis",
    "placeholder",
    "todo",
    "tbd",
    "fixme",
    "xxx",
    "example",
    "sample",
    "dummy",
    "fake",
    "test",
    "testing",
    "test123",
    "tester",
    "demo",
    "dev",
    "development",
    "prod",
    "production",
    "staging",
    "local",
    "localhost",
    "default",
    "none",
    "null",
    "nil",
    "undefined",
    "empty",
    "blank",
    "unset",
    "notset",
    "n/a",
    "redacted",
    "hidden",
    "masked",
    "private",
    "secret",
    "secrets",
    "supersecret",
    "topsecret",
    "mysecret",
    "verysecret",
    "notsecret",
    "notsosecret",
    "nosecret",
    "s3cr3t",
    "shhh",
    "shhhhh",
    "secretkey",
    "mysecretkey",
    "supersecretkey",
    "your-secret-key",
    "your-secret-key-here",
    "secret-key-here",
    "your_secret_here",
    "your-api-key",
    "your-token",
    "your_token_here",
    "your-password",
    "your_password_here",
    "enter-your-password",
    "insert-password-here",
    "key",
    "apikey",
    "token",
    "accesstoken",
    "auth",
    "authtoken",
    "jwt",
    "jwtsecret",
    "jwt_secret_key",
    "session",
    "sessionsecret",
    "signingkey",
    "appkey",
    "app_secret",
    "cookie-secret",
    "insecure",
    "unsafe",
    "dontusethisinproduction",
    "do-not-use-in-production",
    "notforproduction",
    # framework defaults from their documentation and generators
    "keyboard cat",  # express-session README
    "ThisTokenIsNotSoSecretChangeIt",  # Symfony APP_SECRET
    "SomeRandomString",  # Laravel .env.example APP_KEY
    "thisismysecretkey",
    "\\2\\1thisismyscretkey\\1\\2\\e\\y\\y\\h",  # Apache Superset SECRET_KEY
    "temporary_key",
    "django",
    "flask",
    "rails",
    "laravel",
    "symfony",
    # common passwords
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssword",
    "pass",
    "pass123",
    "pass1234",
    "passwd",
    "pwd",
    "mypassword",
    "mysecretpassword",  # postgres image documentation
    "secretpassword",
    "supersecretpassword",
    "secret123",
    "secret1",
    "letmein",
    "letmein123",
    "welcome",
    "welcome1",
    "welcome123",
    "iloveyou",
    "trustno1",
    "monkey",
    "dragon",
    "master",
    "shadow",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "batman",
    "michael",
    "jordan",
    "hunter",
    "hunter2",
    "freedom",
    "whatever",
    "qwerty",
    "qwerty123",
    "qwertyuiop",
    "asdf",
    "asdfgh",
    "asdfghjkl",
    "zxcvbn",
    "zxcvbnm",
    "qazwsx",
    "1qaz2wsx",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "abc123",
    "abcd1234",
    "abcdef",
    "abcdefg",
    "123abc",
    "aaaaaa",
    "111111",
    "000000",
    "123123",
    "121212",
    "123321",
    "654321",
    "666666",
    "696969",
    "7777777",
    "112233",
    "159753",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "0987654321",
    "987654321",
    "11111111",
    "00000000",
    # service and image defaults
    "admin",
    "admin123",
    "admin1234",
    "administrator",
    "adminadmin",
    "root",
    "root123",
    "toor",
    "rootpassword",
    "user",
    "username",
    "login",
    "guest",
    "operator",
    "manager",
    "postgres",
    "postgresql",
    "postgres123",
    "pgpassword",
    "mysql",
    "mysqlpassword",
    "mariadb",
    "mongo",
    "mongodb",
    "mongoadmin",
    "redis",
    "redispassword",
    "redis123",
    "sa",
    "oracle",
    "elastic",
    "kibana",
    "rabbitmq",
    "minio",
    "minioadmin",
    "minio123",
    "grafana",
    "sentry",
    "gitea",
    "nextcloud",
    "wordpress",
    "somewordpress",  # docker documentation's wordpress sample
    "mattermost",
    "mmuser_password",
    "keycloak",
    "jenkins",
    "docker",
    "vagrant",
    "ubuntu",
    "raspberry",
    "database",
    "db",
    "dbpassword",
    "dbpass",
    "app",
    "application",
    "web",
    "server",
    "backend",
    "api",
    # AWS documentation example credentials
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "AKIAIOSFODNN7EXAMPLE",
)
_KNOWN_WEAK = frozenset(_normalise(entry) for entry in _KNOWN_WEAK_RAW)
_KNOWN_WEAK_MAX = max(len(entry) for entry in _KNOWN_WEAK_RAW) * 2  # room for separators

# Substrings that only a placeholder contains ("CHANGE_ME_TO_A_LONG_RANDOM_STRING",
# "prod-key-change-me"); matched in the normalised text, so separators do not matter.
_PLACEHOLDER_MARKERS = (
    "changeme",
    "changethis",
    "changeit",
    "replaceme",
    "replacethis",
    "replacewith",
    "placeholder",
    "dummy",
    "insecure",
    "notsecure",
    "notasecret",
    "notsosecret",
    "yoursecret",
    "yourpassword",
    "yourpasswd",
    "yourtoken",
    "yourapikey",
    "yourkey",
    "example",
    "fixme",
    "tobechanged",
    "pleasechange",
    "mustchange",
    "dontuse",
    "donotuse",
)
_SECRET_NOUNS = ("key", "secret", "pass", "pwd", "token")
_PLACEHOLDER_VERBS = ("enter", "insert", "put", "paste", "add", "set")
_PLACEHOLDER_SEPARATORS = frozenset(" _-.:/")
_FILLER_CHARS = frozenset("*xX.#?\u2022-_ ")
_FILLER_MARKS = frozenset("*xX#?\u2022")

_INSECURE_PREFIXES = ("django-insecure-",)
_ENCODING_PREFIXES = ("base64:",)  # Laravel APP_KEY=base64:...

# Bounds: every per-character Python loop runs over at most this many characters.
_MAX_ANALYSED = 4096
_MAX_PERIOD = 64
_MAX_DICTIONARY_CHECK = 64


def _is_placeholder_text(inner: str) -> bool:
    """Words a person writes between brackets: "<your password>", "{{ DB_PASSWORD }}".
    Random strings of all printable characters almost always contain another symbol."""
    return any(ch.isalpha() for ch in inner) and all(
        ch.isalnum() or ch in _PLACEHOLDER_SEPARATORS for ch in inner
    )


def _placeholder_reason(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    head = text[:_MAX_ANALYSED]
    bracketed = (text[0] == "<" and text[-1] == ">") or (
        text.startswith("{{") and text.endswith("}}")
    )
    if bracketed and len(text) <= _MAX_ANALYSED and _is_placeholder_text(text.strip("<>{}")):
        return "placeholder"
    # cookiecutter-django: "!!!SET DJANGO_SECRET_KEY!!!"
    if text.startswith("!!!") and (text.endswith("!!!") or head[3:].lower().startswith("set")):
        return "placeholder"
    if len(text) <= _MAX_ANALYSED and set(text) <= _FILLER_CHARS and set(text) & _FILLER_MARKS:
        return "masked or filler characters"
    # "xxx-prod-key", "XXXXXXXXXXXX1234": the shape of a value someone has to fill in. One
    # case only: "xXx" starts random strings too often.
    for x in "xX":
        fill = len(head) - len(head.lstrip(x))
        if fill >= 6 or (fill >= 3 and (fill == len(head) or not head[fill].isalnum())):
            return "placeholder"
    normal = _normalise(head)
    # Short markers ("dummy", "fixme") hide in random mixed-case strings ("bfIxMEB"): they
    # only count at either end.
    for marker in _PLACEHOLDER_MARKERS:
        if marker in normal and (
            len(marker) >= 7 or normal.startswith(marker) or normal.endswith(marker)
        ):
            return "placeholder"
    if head[:4] in {"your", "Your", "YOUR"} and (
        normal.endswith("here") or any(noun in normal for noun in _SECRET_NOUNS)
    ):
        return "placeholder"
    # "enter-your-key", "INSERT_TOKEN_HERE"
    if normal.startswith(_PLACEHOLDER_VERBS) and (normal.endswith("here") or "your" in normal):
        return "placeholder"
    return None


def _repeated_period(value: str) -> int | None:
    """Smallest period p <= _MAX_PERIOD with value == (value[:p] * k)[:len(value)], k >= 2."""
    n = len(value)
    head = value[: _MAX_ANALYSED + _MAX_PERIOD]
    for period in range(1, min(_MAX_PERIOD, n // 2) + 1):
        # The prefix test is cheap and rules out almost every period before the full compare.
        if head[period:] == head[:-period] and value[period:] == value[:-period]:
            return period
    return None


def _walk_steps() -> dict[tuple[str, str], frozenset[int]]:
    """For each pair of adjacent characters, the directed rows it steps along (row * 2 + 0 for
    forward, + 1 for backward): keyboard rows and the alphabet, each case on its own.

    A walk must keep one row and one direction ("qwer", "4321"); "xyxz" is no walk. Rows are
    few on purpose: each pair added makes random strings look like walks more often (with
    keyboard columns and case folding, a random 64-hex key lost a fifth of its estimate)."""
    rows = ("abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
    steps: dict[tuple[str, str], set[int]] = {}
    for index, row in enumerate((*rows, *(row.upper() for row in rows), "!@#$%^&*()")):
        for a, b in itertools.pairwise(row):
            steps.setdefault((a, b), set()).add(index * 2)
            steps.setdefault((b, a), set()).add(index * 2 + 1)
    return {pair: frozenset(ids) for pair, ids in steps.items()}


_WALK_STEPS = _walk_steps()
_NO_STEP: frozenset[int] = frozenset()

# Words of common passwords, placeholders and deployment vocabulary. Used to discount words
# inside longer values and to recognise values that are nothing but such words.
_WORD_LIST = """
    password passwd pass word words secret secrets secure security key keys token access admin
    root master super uber top very real really strong long complex random hard simple easy good
    best great new old temp private public default sample example test demo dev prod production
    staging local welcome hello world letmein change changeme this that it me my the your our
    their here there please for and not is are was to of in on at with from by use using used
    only just some something more most many much pick choose make create generate put enter
    insert set get database data postgres postgresql mysql maria mariadb mongo redis cache queue
    elastic kibana grafana sentry docker compose service server backend frontend api app
    application web site cloud host user users login auth session cookie signing sign jwt hmac
    django flask rails laravel symfony node express company team project love iloveyou dragon
    monkey sunshine princess football baseball soccer shadow summer winter spring autumn fall
    qwerty keyboard computer internet money freedom whatever trust trustno dummy fake mock
    value values string text phrase passphrase code codes number numbers char chars character
    characters letter letters minimum maximum length min max safe unsafe insecure danger
    dangerous do dont never always should must need needs one two three four five six seven
    eight nine ten first second third red blue green black white orange purple yellow silver
    gold star stars sun moon sky blue river lake sea ocean mountain tree forest flower cat dog
    horse tiger lion bear wolf eagle fish bird apple banana orange cherry lemon coffee tea beer
    wine pizza cheese chocolate house home family friend friends baby girl boy man woman king
    queen prince god angel devil heaven hell life live death time day night today tomorrow
    year month week morning evening happy sad lucky magic power energy rock metal music game
    games play player ninja pirate hacker matrix batman superman spider hunter killer warrior
    victory winner champion"""
_WORDS = frozenset(_WORD_LIST.split())
_MIN_WORD = 4  # shorter words hide inside random strings too often to discount them
_MAX_WORD = max(len(word) for word in _WORDS)
_WORD_HEADS = frozenset(word[:_MIN_WORD] for word in _WORDS if len(word) >= _MIN_WORD)
_WORD_BITS = 13.0  # about log2 of a 10 000-word vocabulary, generous to the value

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_HEX_LOWER = _DIGITS | frozenset("abcdef")
_HEX_UPPER = _DIGITS | frozenset("ABCDEF")
_BASE64 = _LOWER | _UPPER | _DIGITS | frozenset("+/")
_BASE64URL = _LOWER | _UPPER | _DIGITS | frozenset("-_")
_NON_ASCII_CLASS = 100  # one class for every other script; conservative for large scripts


@dataclass(frozen=True)
class _Stats:
    length: int  # of the analysed text
    alphabet: int
    raw_bits: float
    effective_bits: float
    credited_bits: float
    walk_fraction: float  # share of characters inside keyboard walks / sequences
    classes: tuple[str, ...]


def _classes(chars: frozenset[str]) -> tuple[str, ...]:
    found: list[str] = []
    if chars & _LOWER:
        found.append("lowercase letters")
    if chars & _UPPER:
        found.append("uppercase letters")
    if chars & _DIGITS:
        found.append("digits")
    if any(ch.isascii() and not ch.isalnum() for ch in chars):
        found.append("symbols")
    if any(not ch.isascii() for ch in chars):
        found.append("non-ASCII characters")
    return tuple(found)


def _alphabet(text: str, chars: frozenset[str], classes: tuple[str, ...]) -> tuple[int, bool]:
    """(alphabet size, whether the value has a random-generator shape)."""
    has_hex_letter = bool(chars - _DIGITS)
    if chars & _DIGITS and has_hex_letter and (chars <= _HEX_LOWER or chars <= _HEX_UPPER):
        return 16, True
    body = text.rstrip("=")
    body_chars = frozenset(body) if len(body) != len(text) else chars
    if (
        len(text) - len(body) <= 2
        and (body_chars <= _BASE64 or body_chars <= _BASE64URL)
        and body_chars & _LOWER
        and body_chars & _UPPER
    ):
        return 64, True
    sizes = {
        "lowercase letters": 26,
        "uppercase letters": 26,
        "digits": 10,
        "symbols": 33,
        "non-ASCII characters": _NON_ASCII_CLASS,
    }
    return max(1, sum(sizes[name] for name in classes)), False


def _analyse(value: str) -> _Stats:
    text = value[:_MAX_ANALYSED]
    for prefix in _ENCODING_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    chars = frozenset(text)
    classes = _classes(chars)
    alphabet, shaped = _alphabet(text, chars, classes)
    counted = text.rstrip("=") if alphabet == 64 else text
    n = len(counted)
    per_char = math.log2(alphabet)
    weights = [1.0] * n

    # Runs of 3+ identical characters: only the first counts.
    run = 1
    for i in range(1, n):
        run = run + 1 if counted[i] == counted[i - 1] else 1
        if run >= 3:
            weights[i] = 0.0
            weights[i - 1] = 0.0

    # Keyboard walks and sequences: 3+ characters count towards the walk share that the
    # "sequence" check uses; from 4 characters on, only the first counts in the estimate
    # (a third of random 64-hex keys hold a walk of 3, such as "789" or "cba"; penalising
    # those tripled how often a random 16-hex token fell below the token floor).
    in_walk = [False] * n
    start = 0
    direction = _NO_STEP
    for i in range(1, n + 1):
        step = _WALK_STEPS.get((counted[i - 1], counted[i]), _NO_STEP) if i < n else _NO_STEP
        if direction and direction & step:
            direction = direction & step
            continue
        if direction:  # the walk counted[start:i] ends here
            if i - start >= 3:
                in_walk[start:i] = [True] * (i - start)
            if i - start >= 4:
                weights[start + 1 : i] = [0.0] * (i - start - 1)
        start, direction = (i - 1, step) if step else (i, _NO_STEP)
    walked = sum(in_walk)

    # Repeats of an earlier substring of 4+ characters (LZ77-like, one pass): the first
    # character stands for the copy.
    seen: dict[str, int] = {}
    i = 0
    while i + 4 <= n:
        gram = counted[i : i + 4]
        earlier = seen.get(gram)
        if earlier is None or earlier >= i:
            seen.setdefault(gram, i)
            i += 1
            continue
        length = 4
        while i + length < n and counted[earlier + length] == counted[i + length]:
            length += 1
        for j in range(i, i + length):
            if j + 4 <= n:
                seen.setdefault(counted[j : j + 4], j)
            if j > i:
                weights[j] = 0.0
        i += length

    # Dictionary words: a word costs _WORD_BITS, not its letters.
    word_bits = 0.0
    folded = _deleet(counted)
    i = 0
    while i + _MIN_WORD <= n:
        if folded[i : i + _MIN_WORD] not in _WORD_HEADS:
            i += 1  # no word starts here: most positions, so skip trying every length
            continue
        for size in range(min(_MAX_WORD, n - i), _MIN_WORD - 1, -1):
            if folded[i : i + size] in _WORDS:
                letters_bits = sum(weights[i : i + size]) * per_char
                word_bits += min(_WORD_BITS, letters_bits)
                for j in range(i, i + size):
                    weights[j] = 0.0
                i += size
                break
        else:
            i += 1

    raw = n * per_char
    effective = sum(weights) * per_char + word_bits
    credited = raw if shaped and effective >= 0.8 * raw else effective
    return _Stats(
        length=n,
        alphabet=alphabet,
        raw_bits=raw,
        effective_bits=effective,
        credited_bits=credited,
        walk_fraction=walked / n if n else 0.0,
        classes=classes,
    )


def _dictionary_words(value: str) -> int:
    """Number of words when ``value`` is only dictionary words (leetspeak folded, separators
    ignored) with digits or symbols before or after; 0 otherwise."""
    if len(value) > _MAX_DICTIONARY_CHECK:
        return 0
    text = value.lower()
    start, end = 0, len(text)
    while start < end and not text[start].isalpha():
        start += 1
    while end > start and not text[end - 1].isalpha():
        end -= 1
    core = "".join(ch for ch in text[start:end] if ch.isascii() and ch.isalnum())
    # Leetspeak is a few digits among letters ("P4ssw0rd"); a core that is a third digits is
    # noise that folds into words by chance (hex "a70f" -> "atof" -> "at" + "of").
    if len(core) < 4 or 3 * sum(ch.isdigit() for ch in core) > len(core):
        return 0
    core = _deleet(core)
    if not core.isalpha():
        return 0
    # Fewest words covering core[:i], by dynamic programming: O(len * longest word).
    best: list[int | None] = [0] + [None] * len(core)
    for i in range(1, len(core) + 1):
        for size in range(2, min(_MAX_WORD, i) + 1):
            before = best[i - size]
            if before is not None and core[i - size : i] in _WORDS:
                candidate = before + 1
                current = best[i]
                if current is None or candidate < current:
                    best[i] = candidate
    return best[-1] or 0


@dataclass(frozen=True)
class _Policy:
    min_length: int
    min_bits: float | None  # None: not judged by entropy
    min_classes: int
    classes_waived_from: int  # length from which one character class is enough
    guessable_checks: bool  # dictionary, sequences, user name


_POLICY: dict[SecretClass, _Policy] = {
    SecretClass.SIGNING_KEY: _Policy(32, 256.0, 1, 0, True),
    SecretClass.DB_PASSWORD: _Policy(24, 64.0, 2, 32, True),
    SecretClass.REDIS_PASSWORD: _Policy(24, 64.0, 2, 32, True),
    SecretClass.PASSWORD: _Policy(16, 48.0, 1, 0, True),
    SecretClass.TOKEN: _Policy(16, 48.0, 1, 0, True),
    SecretClass.AWS_SECRET: _Policy(40, None, 1, 0, False),
}


def _equals_username(value: str, username: str | None) -> bool:
    if not username:
        return False
    user = _normalise(username[:_MAX_ANALYSED])
    if not user or len(value) > 2 * _MAX_ANALYSED:
        return False
    text = _normalise(value)
    # "postgres" / "Postgres2024!" for user "postgres": equal once trailing digits go.
    return text == user or (text.startswith(user) and text[len(user) :].isdigit())


def assess(value: str, cls: SecretClass, *, username: str | None = None) -> Weakness | None:
    """Why ``value`` is too weak for a secret of class ``cls``, or None when it is strong enough.

    References (``is_reference``) are never judged and return None, so an empty value is not a
    weakness here: a missing password is the caller's finding. Checks run from the most
    specific reason to the most generic: known default, placeholder, equal to the user name,
    repeated pattern, keyboard walk or sequence, dictionary words, length, character variety,
    estimated entropy. AWS secret keys only get the first two, the filler test and length.
    """
    if is_reference(value):
        return None
    policy = _POLICY[cls]
    stripped = value.strip()
    if stripped.lower().startswith(_INSECURE_PREFIXES):
        return Weakness("known insecure prefix", "default")
    if len(stripped) <= _KNOWN_WEAK_MAX:
        normal = _normalise(stripped)
        if normal in _KNOWN_WEAK or _normalise(_deleet(stripped)) in _KNOWN_WEAK:
            return Weakness("known default value", "default")
    placeholder = _placeholder_reason(stripped)
    if placeholder is not None:
        return Weakness(placeholder, "placeholder")
    if policy.guessable_checks and _equals_username(stripped, username):
        return Weakness("equal to the user name", "equals-username")
    if len(value) >= 2 and _repeated_period(value) is not None:
        return Weakness("repeated pattern", "repeated")
    length = len(value)
    if not policy.guessable_checks:
        if length < policy.min_length:
            return Weakness(
                f"{length} characters; at least {policy.min_length} expected", "too-short"
            )
        return None

    stats = _analyse(value)
    if stats.length >= 4 and stats.walk_fraction >= 0.6:
        return Weakness("keyboard walk or character sequence", "sequence")
    words = _dictionary_words(stripped)
    if words:
        return Weakness("dictionary word" if words == 1 else "dictionary words", "dictionary")
    if length < policy.min_length:
        return Weakness(f"{length} characters; at least {policy.min_length} expected", "too-short")
    if len(stats.classes) < policy.min_classes and length < policy.classes_waived_from:
        only = stats.classes[0] if stats.classes else "one kind of character"
        return Weakness(f"only {only}", "low-variety")
    if policy.min_bits is not None and stats.credited_bits < policy.min_bits:
        return Weakness(
            f"estimated {int(stats.credited_bits)} bits of entropy; "
            f"at least {int(policy.min_bits)} expected",
            "low-entropy",
        )
    return None
