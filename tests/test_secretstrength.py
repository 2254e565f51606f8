"""Tests for policyscan.secretstrength: names, strength, references, redaction, reuse."""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyscan.secretstrength import (
    WEAKNESS_CODES,
    SecretClass,
    Weakness,
    _analyse,
    assess,
    classify_name,
    is_reference,
    redact,
    reused,
)

S = SecretClass

# ----------------------------------------------------------------------------- classify_name


def test_secret_class_values_are_the_stable_strings() -> None:
    assert {c.name: c.value for c in SecretClass} == {
        "SIGNING_KEY": "signing-key",
        "DB_PASSWORD": "database-password",
        "REDIS_PASSWORD": "redis-password",
        "PASSWORD": "password",
        "TOKEN": "token",
        "AWS_SECRET": "aws-secret-key",
    }
    assert SecretClass("signing-key") is S.SIGNING_KEY
    # A str enum: usable wherever the caller expects the plain string.
    assert isinstance(S.TOKEN, str)
    assert json.dumps({"class": S.TOKEN}) == '{"class": "token"}'


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # signing keys
        ("SECRET_KEY", S.SIGNING_KEY),
        ("DJANGO_SECRET_KEY", S.SIGNING_KEY),
        ("JWT_SECRET", S.SIGNING_KEY),
        ("JWT_SECRET_KEY", S.SIGNING_KEY),
        ("SESSION_SECRET", S.SIGNING_KEY),
        ("APP_KEY", S.SIGNING_KEY),
        ("SIGNING_KEY", S.SIGNING_KEY),
        ("SENTRY_SYSTEM_SECRET_KEY", S.SIGNING_KEY),
        ("JWT_APP_SECRET", S.SIGNING_KEY),
        ("SECRET_KEY_BASE", S.SIGNING_KEY),
        ("jwtSecret", S.SIGNING_KEY),
        ("JWT_SECRET_KEY_V2", S.SIGNING_KEY),
        ("Secret_Key", S.SIGNING_KEY),
        # database passwords
        ("POSTGRES_PASSWORD", S.DB_PASSWORD),
        ("MYSQL_PASSWORD", S.DB_PASSWORD),
        ("MYSQL_ROOT_PASSWORD", S.DB_PASSWORD),
        ("DB_PASSWORD", S.DB_PASSWORD),
        ("DATABASE_PASSWORD", S.DB_PASSWORD),
        ("PGPASSWORD", S.DB_PASSWORD),
        ("MARIADB_PASSWORD", S.DB_PASSWORD),
        ("MONGO_INITDB_ROOT_PASSWORD", S.DB_PASSWORD),
        ("WORDPRESS_DB_PASSWORD", S.DB_PASSWORD),
        ("DB_PASSWD", S.DB_PASSWORD),
        ("password", S.DB_PASSWORD),
        ("master_password", S.DB_PASSWORD),
        ("masterUserPassword", S.DB_PASSWORD),
        ("password_wo", S.DB_PASSWORD),
        ("DB_PASSWORD_PROD", S.DB_PASSWORD),
        ("SA_PASSWORD", S.DB_PASSWORD),
        # redis
        ("REDIS_PASSWORD", S.REDIS_PASSWORD),
        ("REDIS_PASS", S.REDIS_PASSWORD),
        ("REDIS_CACHE_PASSWORD", S.REDIS_PASSWORD),
        ("requirepass", S.REDIS_PASSWORD),
        ("masterauth", S.REDIS_PASSWORD),
        ("auth_token", S.REDIS_PASSWORD),
        # AWS and S3-compatible storage
        ("AWS_SECRET_ACCESS_KEY", S.AWS_SECRET),
        ("aws_secret_access_key", S.AWS_SECRET),
        ("secret_key", S.AWS_SECRET),
        ("DJANGO_AWS_SECRET_ACCESS_KEY", S.AWS_SECRET),
        ("AWS_SECRET_KEY", S.AWS_SECRET),
        ("MINIO_SECRET_KEY", S.AWS_SECRET),
        # other passwords
        ("SMTP_PASSWORD", S.PASSWORD),
        ("EMAIL_PASSWD", S.PASSWORD),
        ("RABBITMQ_DEFAULT_PASS", S.PASSWORD),
        ("GF_SECURITY_ADMIN_PASSWORD", S.PASSWORD),
        ("WEBPASSWORD", S.PASSWORD),
        ("PIHOLE_PW", S.PASSWORD),
        ("smtp_password2", S.PASSWORD),
        # tokens
        ("GITHUB_TOKEN", S.TOKEN),
        ("TOKEN", S.TOKEN),
        ("SENDGRID_API_KEY", S.TOKEN),
        ("apiKey", S.TOKEN),
        ("CLIENT_SECRET", S.TOKEN),
        ("client_secret", S.TOKEN),
        ("LAUNCHPAD_RPC_SHARED_SECRET", S.TOKEN),
        ("SECRET", S.TOKEN),
        ("accessToken", S.TOKEN),
    ],
)
def test_classify_name_recognises_secret_names(name: str, expected: SecretClass) -> None:
    assert classify_name(name) is expected


@pytest.mark.parametrize(
    "name",
    [
        # the brief's look-alikes
        "PASSWORD_MIN_LENGTH",
        "PASSWORD_RESET_TIMEOUT",
        "SECRET_KEY_FILE",
        "POSTGRES_PASSWORD_FILE",
        "MYSQL_ROOT_PASSWORD_FILE",
        "TOKEN_EXPIRE_MINUTES",
        "ACCESS_TOKEN_EXPIRE_MINUTES",
        "TOKEN_TTL",
        "SESSION_TTL",
        "REDIS_URL",
        "DATABASE_URL",
        "AWS_ACCESS_KEY_ID",
        "DEBUG_TOOLBAR",
        # Terraform arguments next to real secrets (terraform-aws-rds / -elasticache / -alb)
        "manage_master_user_password",
        "password_wo_version",
        "master_user_password_rotation_duration",
        "master_user_secret_kms_key_id",
        "domain_auth_secret_arn",
        "no_password_required",
        "auth_token_update_strategy",
        "token_endpoint",
        "generate_secret",
        "create_random_password",
        # switches in image environments, not secrets
        "MYSQL_RANDOM_ROOT_PASSWORD",
        "MYSQL_ALLOW_EMPTY_PASSWORD",
        # files and other non-secrets
        "nginx_htpasswd",
        "NOPASSWD",
        "PWD",
        "PASS",
        "SECRETS",
        "ACCESS_KEY",
        "accessKeyId",
        "API_KEY_HEADER",
        "PASSWORD_HASHERS",
        "AUTH_PASSWORD_VALIDATORS",
        "BYPASS",
        "COMPASS_URL",
        "DEBUG",
        "",
        "___",
    ],
)
def test_classify_name_rejects_look_alikes(name: str) -> None:
    assert classify_name(name) is None


@pytest.mark.parametrize("name", ["DB_PASSWORD", "JWT_SECRET", "GITHUB_TOKEN", "REDIS_PASSWORD"])
@pytest.mark.parametrize("suffix", ["_FILE", "_URL", "_TTL", "_PATH", "_ID", "_LENGTH", "_EXPIRY"])
def test_classify_name_metadata_suffix_is_not_a_secret(name: str, suffix: str) -> None:
    assert classify_name(name) is not None
    assert classify_name(name + suffix) is None


@pytest.mark.parametrize(
    "name", ["postgres_password", "Postgres_Password", "postgresPassword", "jwt-secret"]
)
def test_classify_name_is_case_and_separator_insensitive(name: str) -> None:
    assert classify_name(name) is classify_name(name.upper().replace("-", "_")) is not None


@given(st.text(max_size=300))
def test_classify_name_never_raises(name: str) -> None:
    assert classify_name(name) is None or isinstance(classify_name(name), SecretClass)


# ----------------------------------------------------------------------------- assess: weak

WEAK = [
    # (value, class, expected code)
    ("changethis", S.SIGNING_KEY, "default"),
    ("secret", S.SIGNING_KEY, "default"),
    ("django-insecure-8%v1y!k@3w9p#7c^0&t2o$z5q*x6b+e4a-r_m=s)l(n", S.SIGNING_KEY, "default"),
    ("keyboard cat", S.SIGNING_KEY, "default"),
    ("ThisTokenIsNotSoSecretChangeIt", S.SIGNING_KEY, "default"),
    ("your-secret-key", S.SIGNING_KEY, "default"),
    ("!!!SET DJANGO_SECRET_KEY!!!", S.SIGNING_KEY, "placeholder"),
    ("dummyKeyWithMinimumLength-------------------------", S.SIGNING_KEY, "placeholder"),
    ("CHANGE_ME_TO_A_LONG_RANDOM_STRING_OF_64_CHARACTERS", S.SIGNING_KEY, "placeholder"),
    ("prod-signing-key-change-me", S.SIGNING_KEY, "placeholder"),
    ("deadbeef" * 8, S.SIGNING_KEY, "repeated"),
    ("0123456789abcdef" * 4, S.SIGNING_KEY, "repeated"),
    ("ThisIsMyVerySecretSigningKeyForProductionUse", S.SIGNING_KEY, "dictionary"),
    ("q8Fz2Lw", S.SIGNING_KEY, "too-short"),
    ("Kq3vX9pLm2Rt7Wz4Yb6Nc8Dh1Fj5Gs0", S.SIGNING_KEY, "too-short"),  # 31 characters
    ("cae95fade4b03a064ca500b7c48f39d9", S.SIGNING_KEY, "low-entropy"),  # 128-bit hex
    (
        "cae95fade4b03a064ca500b7c48f39d9578a7166754700427266a6f8fc0d0be",
        S.SIGNING_KEY,
        "low-entropy",
    ),
    ("E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWE", S.SIGNING_KEY, "low-entropy"),  # 42 base64url
    ("550e8400-e29b-41d4-a716-446655440000", S.SIGNING_KEY, "low-entropy"),  # a UUID: 122 bits
    (
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz9",
        S.SIGNING_KEY,
        "low-entropy",
    ),
    # database passwords
    ("postgres", S.DB_PASSWORD, "default"),
    ("Change-Me!", S.DB_PASSWORD, "default"),
    ("P@ssw0rd", S.DB_PASSWORD, "default"),
    ("mysecretpassword", S.DB_PASSWORD, "default"),
    ("example_123", S.DB_PASSWORD, "placeholder"),
    ("<your database password>", S.DB_PASSWORD, "placeholder"),
    ("your_db_password_here", S.DB_PASSWORD, "placeholder"),
    ("xxx-production-database", S.DB_PASSWORD, "placeholder"),
    ("************************", S.DB_PASSWORD, "placeholder"),
    ("passwordpasswordpassword", S.DB_PASSWORD, "repeated"),
    ("Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3", S.DB_PASSWORD, "repeated"),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", S.DB_PASSWORD, "repeated"),
    ("qwertyuiopasdfghjklzxcvbnm", S.DB_PASSWORD, "sequence"),
    ("1234567890qwertyuiop!@#$%^&*()", S.DB_PASSWORD, "sequence"),
    ("abcdefghijklmnopqrstuvwxyz", S.DB_PASSWORD, "sequence"),
    ("Postgres_Password_2024!!", S.DB_PASSWORD, "dictionary"),
    ("postgres2024", S.DB_PASSWORD, "dictionary"),
    ("UberSecretPassword", S.DB_PASSWORD, "dictionary"),
    ("J5brHrAXFLQSif0K", S.DB_PASSWORD, "too-short"),
    ("nextcloud", S.DB_PASSWORD, "default"),
    ("correcthorsebatterystaple", S.DB_PASSWORD, "low-variety"),
    ("847019353864707397438066", S.DB_PASSWORD, "low-variety"),
    ("aaaaaaaaaaaaaaaaaaaaaaa1", S.DB_PASSWORD, "low-entropy"),
    # redis
    ("redis", S.REDIS_PASSWORD, "default"),
    ("PickSomethingMoreSecure123!", S.REDIS_PASSWORD, "dictionary"),
    ("password123456789", S.REDIS_PASSWORD, "dictionary"),
    ("t4Ph722qJ5QHeQ1qfu36", S.REDIS_PASSWORD, "too-short"),
    ("H733Kdjndks81", S.REDIS_PASSWORD, "too-short"),
    # other passwords and tokens
    ("admin", S.PASSWORD, "default"),
    ("letmein", S.PASSWORD, "default"),
    ("grafana", S.PASSWORD, "default"),
    ("Welcome2024!", S.PASSWORD, "dictionary"),
    ("k3Lm9Qx2", S.PASSWORD, "too-short"),
    ("supersecret", S.TOKEN, "default"),
    ("your_api_key_here", S.TOKEN, "placeholder"),
    ("{{ INSERT_TOKEN_HERE }}", S.TOKEN, "placeholder"),
    ("xxxxxxxxxxxxxxxxxxxxxxxx", S.TOKEN, "placeholder"),
    ("abcd1234abcd1234", S.TOKEN, "repeated"),
    ("ghp_1a2B3c", S.TOKEN, "too-short"),
    ("1111111111111112", S.TOKEN, "low-entropy"),
    # AWS: defaults, placeholders, fillers and length only
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", S.AWS_SECRET, "default"),
    ("sentry", S.AWS_SECRET, "default"),
    ("minioadmin", S.AWS_SECRET, "default"),
    ("<AWS_SECRET_ACCESS_KEY>", S.AWS_SECRET, "placeholder"),
    ("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", S.AWS_SECRET, "placeholder"),
    ("abcdabcdabcdabcdabcdabcdabcdabcdabcdabcd", S.AWS_SECRET, "repeated"),
    ("uLPkeZdvoXNeZSa/Fu36XxTSu/+019SFPuwX9WW", S.AWS_SECRET, "too-short"),  # 39 characters
]


@pytest.mark.parametrize(("value", "cls", "code"), WEAK)
def test_assess_weak_values(value: str, cls: SecretClass, code: str) -> None:
    weakness = assess(value, cls)
    assert weakness is not None
    assert weakness.code == code
    assert code in WEAKNESS_CODES


@pytest.mark.parametrize(("value", "cls", "code"), WEAK)
def test_weakness_reason_never_contains_the_value(value: str, cls: SecretClass, code: str) -> None:
    weakness = assess(value, cls)
    assert weakness is not None
    assert value not in weakness.reason
    assert value.lower() not in weakness.reason.lower()


@pytest.mark.parametrize(
    ("value", "cls", "reason"),
    [
        ("J5brHrAXFLQSif0K", S.DB_PASSWORD, "16 characters; at least 24 expected"),
        ("k3Lm9Qx2", S.TOKEN, "8 characters; at least 16 expected"),
        ("q8Fz2Lw", S.SIGNING_KEY, "7 characters; at least 32 expected"),
        ("uLPkeZdvoX", S.AWS_SECRET, "10 characters; at least 40 expected"),
        (
            "cae95fade4b03a064ca500b7c48f39d9",
            S.SIGNING_KEY,
            "estimated 128 bits of entropy; at least 256 expected",
        ),
        ("correcthorsebatterystaple", S.DB_PASSWORD, "only lowercase letters"),
        ("CORRECTHORSEBATTERYSTAPLE", S.DB_PASSWORD, "only uppercase letters"),
        ("847019353864707397438066", S.DB_PASSWORD, "only digits"),
        ("changeme", S.DB_PASSWORD, "known default value"),
        ("django-insecure-whatever", S.SIGNING_KEY, "known insecure prefix"),
        ("postgres2024", S.DB_PASSWORD, "dictionary word"),
        ("deadbeef" * 8, S.SIGNING_KEY, "repeated pattern"),
    ],
)
def test_assess_reason_text(value: str, cls: SecretClass, reason: str) -> None:
    weakness = assess(value, cls)
    assert weakness is not None
    assert weakness.reason == reason


STRONG = [
    # secrets.token_urlsafe(32), token_hex(32), base64 of 32 random bytes
    ("E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw", S.SIGNING_KEY),
    ("chSfVbWuwvGOjzEv6u7gukSIKdVXE9m3aq_CjgJXA8k", S.SIGNING_KEY),
    ("cae95fade4b03a064ca500b7c48f39d9578a7166754700427266a6f8fc0d0be4", S.SIGNING_KEY),
    ("CAE95FADE4B03A064CA500B7C48F39D9578A7166754700427266A6F8FC0D0BE4", S.SIGNING_KEY),
    ("u95ZT+wh3vUhTjD6445vp8x7iaSItjJoINbUdmlSbW8=", S.SIGNING_KEY),
    # Django's get_random_secret_key() and a Laravel APP_KEY
    ("2ih*qjzm@0zsbbj6+s0hna2^hx7i1^!9=acfcrj63k-!77291z", S.SIGNING_KEY),
    ("base64:7WoWJ3JSy9h42cHIMbKTlnqpSXcmNqKGhQ9hwlWEAMU=", S.SIGNING_KEY),
    # 30-character mixed passwords, openssl rand -hex 12, token_urlsafe(24)
    ("0.9MnYoFSwJiLuJx&!z^~5+1vFpyp*", S.DB_PASSWORD),
    ("5!*Qk70re@J*M9:^V^0T-8fqGcj&n6", S.DB_PASSWORD),
    ("hlH_2axsNK#C%D0o@A~b9II%y..N0!", S.REDIS_PASSWORD),
    ("d6bcd1a2679af264e0d44a3d", S.DB_PASSWORD),
    ("4cymaytjMg2_VUMHT8nzjJksqM51978D", S.REDIS_PASSWORD),
    ("bsbcftvjaxdkmdhvpglxpacersaljfqr", S.DB_PASSWORD),  # one class, but 32 characters
    ("correct-horse-battery-staple-2024", S.DB_PASSWORD),
    # token_hex(8), token_urlsafe(16)
    ("78a0fb699d27fb0d", S.TOKEN),
    ("229851a70f400611", S.TOKEN),  # leetspeak folds "a70f" to "at" + "of": not a word
    ("CPW_V9nd-x5pdODVIOlcHQ", S.TOKEN),
    ("0.9MnYoFSwJiLuJx", S.PASSWORD),
    # an AWS-shaped secret access key (40 base64 characters)
    ("uLPkeZdvoXNeZSa/Fu36XxTSu/+019SFPuwX9WWd", S.AWS_SECRET),
]


@pytest.mark.parametrize(("value", "cls"), STRONG)
def test_assess_strong_values(value: str, cls: SecretClass) -> None:
    assert assess(value, cls) is None


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        (value, cls)
        for value, stronger in STRONG
        for cls in SecretClass
        if len(value) >= 40 and stronger is S.SIGNING_KEY
    ],
)
def test_a_strong_signing_key_is_strong_for_every_class(value: str, cls: SecretClass) -> None:
    assert assess(value, cls) is None


# Random generators trip the estimator's pattern penalties by chance (a run of three in a hex
# key, "qwer" in a base64 one): generated secrets must still pass, or every fresh key would
# be a finding now and then. Seeded, so the test is deterministic.
GENERATORS = [
    ("token_urlsafe(32)", string.ascii_letters + string.digits + "-_", 43, S.SIGNING_KEY),
    ("base64 alphabet, 43", string.ascii_letters + string.digits + "+/", 43, S.SIGNING_KEY),
    ("token_hex(32)", "0123456789abcdef", 64, S.SIGNING_KEY),
    (
        "get_random_secret_key()",
        string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)",
        50,
        S.SIGNING_KEY,
    ),
    ("token_urlsafe(18)", string.ascii_letters + string.digits + "-_", 24, S.DB_PASSWORD),
    ("rand -hex 12", "0123456789abcdef", 24, S.DB_PASSWORD),
    (
        "30 printable",
        string.ascii_letters + string.digits + string.punctuation,
        30,
        S.REDIS_PASSWORD,
    ),
    ("aws secret access key", string.ascii_letters + string.digits + "+/", 40, S.AWS_SECRET),
    ("token_urlsafe(12)", string.ascii_letters + string.digits + "-_", 16, S.TOKEN),
]


@pytest.mark.parametrize(
    ("label", "alphabet", "length", "cls"), GENERATORS, ids=[g[0] for g in GENERATORS]
)
def test_generated_secrets_pass(label: str, alphabet: str, length: int, cls: SecretClass) -> None:
    rng = random.Random(f"policyscan-{label}")
    failures = []
    for _ in range(2000):
        value = "".join(rng.choices(alphabet, k=length))
        weakness = assess(value, cls)
        if weakness is not None:
            failures.append((value, weakness))
    assert failures == []


@pytest.mark.parametrize(
    ("short", "long", "cls"),
    [
        # 24 characters is the seed's threshold for database and Redis passwords
        ("0.9MnYoFSwJiLuJx&!z^~5+", "0.9MnYoFSwJiLuJx&!z^~5+1", S.DB_PASSWORD),
        ("0.9MnYoFSwJiLuJx&!z^~5+", "0.9MnYoFSwJiLuJx&!z^~5+1", S.REDIS_PASSWORD),
        ("0.9MnYoFSwJiLuJ", "0.9MnYoFSwJiLuJx", S.PASSWORD),
        ("0.9MnYoFSwJiLuJ", "0.9MnYoFSwJiLuJx", S.TOKEN),
        # 256 bits: 64 hex characters, 43 base64 characters
        (
            "cae95fade4b03a064ca500b7c48f39d9578a7166754700427266a6f8fc0d0be",
            "cae95fade4b03a064ca500b7c48f39d9578a7166754700427266a6f8fc0d0be4",
            S.SIGNING_KEY,
        ),
        (
            "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWE",
            "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw",
            S.SIGNING_KEY,
        ),
        (
            "uLPkeZdvoXNeZSa/Fu36XxTSu/+019SFPuwX9WW",
            "uLPkeZdvoXNeZSa/Fu36XxTSu/+019SFPuwX9WWd",
            S.AWS_SECRET,
        ),
    ],
)
def test_length_thresholds_are_exact(short: str, long: str, cls: SecretClass) -> None:
    assert assess(short, cls) is not None
    assert assess(long, cls) is None


def test_aws_secret_is_not_judged_by_entropy_or_words() -> None:
    # 40 characters, but a dictionary phrase and one character class: a DB password would
    # fail, an AWS secret key only fails for defaults, placeholders, fillers and length.
    value = "monkeydragonsunshineprincessfootballhome"
    assert len(value) == 40
    assert assess(value, S.DB_PASSWORD) is not None
    assert assess(value, S.AWS_SECRET) is None


@pytest.mark.parametrize(
    "value", ["changeme", "CHANGEME", "Change-Me!", "change_me", " changeme ", "CHANGE ME"]
)
def test_known_weak_values_match_case_and_separator_insensitively(value: str) -> None:
    assert assess(value, S.DB_PASSWORD) == Weakness("known default value", "default")


@pytest.mark.parametrize(
    ("value", "username"),
    [
        ("appuser-db-0123456789abcd", "appuser-db-0123456789abcd"),
        ("AppUser-DB-0123456789ABCD", "appuser_db_0123456789abcd"),
        ("svc_orders_writer_2024_042", "svc_orders_writer"),
    ],
)
def test_password_equal_to_username(value: str, username: str) -> None:
    weakness = assess(value, S.DB_PASSWORD, username=username)
    assert weakness == Weakness("equal to the user name", "equals-username")


def test_username_only_matters_when_equal() -> None:
    value = "4cymaytjMg2_VUMHT8nzjJksqM51978D"
    assert assess(value, S.DB_PASSWORD, username="orders") is None
    assert assess(value, S.DB_PASSWORD, username="") is None
    assert assess(value, S.DB_PASSWORD, username=None) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "${POSTGRES_PASSWORD}",
        "${POSTGRES_PASSWORD:?Variable not set}",
        "$SECRET_KEY",
        "{{ secrets.DB_PASSWORD }}",
        "vault:secret/data/db#password",
    ],
)
@pytest.mark.parametrize("cls", list(SecretClass))
def test_references_are_never_judged(value: str, cls: SecretClass) -> None:
    assert assess(value, cls) is None


@pytest.mark.parametrize(
    "value",
    [
        "a" * 1_000_000,
        "ab" * 500_000,
        "a" * 999_999 + "b",
        "x7Gq" * 250_000,
        "".join(chr(0x4E00 + i % 20_000) for i in range(1_000_000)),
        "${" + "A" * 1_000_000 + "}",
        "$" + "{" * 1_000_000,
        "{{" * 500_000,
        "<" + "a" * 1_000_000 + ">",
    ],
    ids=[
        "run",
        "period-2",
        "run-then-b",
        "period-4",
        "cjk",
        "huge-ref",
        "braces",
        "templ",
        "angle",
    ],
)
def test_assess_is_fast_on_megabyte_values(value: str) -> None:
    start = time.perf_counter()
    for cls in SecretClass:
        assess(value, cls)
    is_reference(value)
    redact(value)
    # A quadratic step on 1 MB would take minutes; linear work takes well under a second.
    assert time.perf_counter() - start < 5.0


def test_megabyte_values_are_still_judged() -> None:
    assert assess("ab" * 500_000, S.SIGNING_KEY) == Weakness("repeated pattern", "repeated")
    assert assess("a" * 999_999 + "b", S.SIGNING_KEY) is not None
    random_key = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=10**6))
    assert assess(random_key, S.SIGNING_KEY) is None


_REASON = re.compile(
    r"(known default value|known insecure prefix|placeholder|masked or filler characters"
    r"|equal to the user name|repeated pattern|keyboard walk or character sequence"
    r"|dictionary words?|\d+ characters; at least \d+ expected"
    r"|only (lowercase letters|uppercase letters|digits|symbols|non-ASCII characters"
    r"|one kind of character)"
    r"|estimated \d+ bits of entropy; at least \d+ expected)"
)

huge_text = st.builds(
    lambda unit, times: unit * times,
    st.text(min_size=1, max_size=12),
    st.integers(min_value=1, max_value=60_000),
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(st.text(), st.text(alphabet=string.printable), huge_text),
    cls=st.sampled_from(SecretClass),
    username=st.one_of(st.none(), st.text(max_size=40)),
)
def test_assess_never_raises_and_reasons_come_from_templates(
    value: str, cls: SecretClass, username: str | None
) -> None:
    weakness = assess(value, cls, username=username)
    if weakness is not None:
        assert weakness.code in WEAKNESS_CODES
        # Every reason is one of the fixed templates, so none can carry the value.
        assert _REASON.fullmatch(weakness.reason), weakness.reason


@settings(max_examples=200, deadline=None)
@given(value=st.text(min_size=1), cls=st.sampled_from(SecretClass))
def test_assess_is_deterministic(value: str, cls: SecretClass) -> None:
    assert assess(value, cls) == assess(value, cls)


# ----------------------------------------------------------------------------- estimator
# The estimator is private, but its rules are documented in the module docstring and the
# thresholds above only mean something if it computes what that documentation says.


@pytest.mark.parametrize(
    ("value", "alphabet"),
    [
        ("cae95fade4b03a06", 16),  # hex: digits and a-f, one case
        ("CAE95FADE4B03A06", 16),
        ("1234987650", 10),  # digits only is not hex
        ("cafebabe", 26),  # letters only is not hex either
        ("E1NGfulX4TjnPyD2vK534sA-5RBz2Sup", 64),  # base64url
        ("u95ZT+wh3vUhTjD6445vp8x7iaSI==", 64),  # base64 with padding
        ("u95zt+wh3vuhtjd6445vp8x7iasi", 26 + 10 + 33),  # one case: not a generator's output
        ("Kq3vX9pLm2Rt7Wz4", 64),  # both cases, base64 characters only: a generator's
        ("hlH_2axsNK#C%D0o@A~b9II%y..N0!", 26 + 26 + 10 + 33),
        ("pässwörd-ünïcode", 26 + 33 + 100),
    ],
)
def test_estimator_alphabet(value: str, alphabet: int) -> None:
    assert _analyse(value).alphabet == alphabet


def test_estimator_raw_bits_are_length_times_log2_alphabet() -> None:
    stats = _analyse("E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw")
    assert stats.raw_bits == 43 * 6
    assert _analyse("cae95fade4b03a064ca500b7c48f39d9").raw_bits == 32 * 4


@pytest.mark.parametrize(
    ("value", "counted_chars"),
    [
        ("Kq3vX9pLm2Rt7Wz4", 16),  # nothing to discount
        ("Kq3vX9pLm2Rt7aaa", 14),  # a run of 3: the first counts
        ("Kq3vX9pLm2Rt7abc", 16),  # a walk of 3 stays (random strings hold them often)
        ("Kq3vX9pLm2Rtabcd", 13),  # a walk of 4: the first counts
        ("Kq3vX9pLm2Rtdcba", 13),  # backwards too
        ("Kq3vX9pLm2Rtxyxz", 16),  # no walk: it changes direction
        ("Kq3vX9pL7Wz4X9pL", 13),  # "X9pL" again: the copy costs one character
    ],
)
def test_estimator_penalties(value: str, counted_chars: int) -> None:
    stats = _analyse(value)
    assert stats.effective_bits == pytest.approx(counted_chars * stats.raw_bits / len(value))


def test_estimator_counts_a_dictionary_word_as_13_bits() -> None:
    plain = _analyse("Kq3vX9pLm2Rt7Wz4")
    worded = _analyse("Kq3vX9pLm2Rtdragon")  # "dragon" replaces "7Wz4" and adds 2
    per_char = plain.raw_bits / 16
    assert worded.effective_bits == pytest.approx(12 * per_char + 13.0)


def test_estimator_credits_random_shapes_with_their_raw_bits() -> None:
    # A 64-hex key with a walk of four ("6789") loses 3 of 64 characters: still credited
    # 256 bits. The same penalty on a value without a generator's shape is not forgiven.
    hex_key = "cae95fade4b03a064ca500b7c48f39d9578a7166754700427266a6f8fc06789e"
    stats = _analyse(hex_key)
    assert stats.effective_bits < 256 <= stats.credited_bits == stats.raw_bits
    printable = "hlH_2axsNK#C%D0o@A~b9II%y..N0!abcd"
    stats = _analyse(printable)
    assert stats.credited_bits == stats.effective_bits < stats.raw_bits


# ----------------------------------------------------------------------------- is_reference


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "${VAR}",
        "$VAR",
        "${VAR:-x}",
        "${VAR-default}",
        "${VAR:?must be set}",
        "${VAR:+alt}",
        "${A}${B}",
        "${OUTER:-${INNER}}",
        " ${VAR} ",
        "{{ secrets.X }}",
        "{{secrets.DB_PASSWORD}}",
        "{{ .Values.db.password }}",
        "${{ secrets.DB_PASSWORD }}",
        "vault:secret/data/db#password",
        "VAULT:secret/db",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db",
        "ssm:/prod/db/password",
        "/run/secrets/db_password",
        "op://prod/postgres/password",
        "ENC[AES256_GCM,data:Tr7o=,iv:1=,tag:k=,type:str]",
        "$(cat /run/secrets/db)",
        "var.db_password",
        "random_password.db.result",
        "data.aws_secretsmanager_secret_version.db.secret_string",
        "module.db.password",
    ],
)
def test_is_reference_true(value: str) -> None:
    assert is_reference(value)


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "${VAR}suffix",
        "prefix-${VAR}",
        "${A}literal${B}",
        "$$VAR",  # compose escape: the literal text $VAR
        "$1abc",
        "$",
        "${",
        "${}",
        "${ VAR}",
        "${VAR",
        "{{ CHANGE_ME }}",
        "{{ your password here }}",
        "{{}}",
        "arn:aws:iam::123456789012:role/app",
        "var. db",
        "vaultpassword",
        "ssh-rsa AAAA",
        "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw",
    ],
)
def test_is_reference_false(value: str) -> None:
    assert not is_reference(value)


def test_a_value_longer_than_any_reference_is_a_literal() -> None:
    # Bounded so that no per-character loop runs over a megabyte value.
    assert is_reference("${" + "A" * 4000 + "}")
    assert not is_reference("${" + "A" * 5000 + "}")


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True))
def test_any_whole_interpolation_is_a_reference(name: str) -> None:
    assert is_reference("${" + name + "}")
    assert is_reference("$" + name)
    assert is_reference("${" + name + ":-fallback}")


@given(st.text())
def test_is_reference_never_raises(value: str) -> None:
    assert isinstance(is_reference(value), bool)


# ----------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("changethisplease", "ch******** (16 chars)"),
        ("abc", "******** (3 chars)"),
        ("", "******** (0 chars)"),
        ("elevenchars", "******** (11 chars)"),
        ("twelvechars!", "tw******** (12 chars)"),
    ],
)
def test_redact_examples(value: str, expected: str) -> None:
    assert redact(value) == expected


@given(st.text(), st.data())
def test_redact_depends_only_on_length_and_shown_prefix(value: str, data: st.DataObject) -> None:
    # The precise guarantee: two values of one length (and, from 12 characters, one two-
    # character prefix) redact identically, so the output cannot carry anything else.
    other = data.draw(st.text(min_size=len(value), max_size=len(value)))
    if len(value) >= 12:
        other = value[:2] + other[2:]
    assert redact(other) == redact(value)


# Characters that the mask template itself uses: a value made of them could "appear" in any
# output, so the substring property is stated for values without them.
_TEMPLATE_CHARS = set("* ()0123456789chars")


@given(st.text(alphabet=st.characters(blacklist_characters="".join(_TEMPLATE_CHARS)), min_size=8))
def test_redact_leaks_no_substring_beyond_the_prefix(value: str) -> None:
    out = redact(value)
    shown = 2 if len(value) >= 12 else 0
    assert out[:shown] == value[:shown]
    # Nothing after the shown prefix shares even one character with the value...
    assert not set(out[shown:]) & set(value)
    # ...so no substring of 3+ characters of the value occurs anywhere in the output.
    assert not any(value[i : i + 3] in out for i in range(len(value) - 2))


# ----------------------------------------------------------------------------- reused


def test_reused_groups_keys_sharing_a_value() -> None:
    values = {
        "compose.yml:web/SECRET_KEY": "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw",
        ".env:JWT_SECRET": "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw",
        ".env:SESSION_SECRET": "E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw",
        ".env:POSTGRES_PASSWORD": "d6bcd1a2679af264e0d44a3d",
        "rds.tf:password": "d6bcd1a2679af264e0d44a3d",
        ".env:REDIS_PASSWORD": "4cymaytjMg2_VUMHT8nzjJksqM51978D",
    }
    groups = reused(values, salt=b"")
    assert groups == {
        hashlib.sha256(b"d6bcd1a2679af264e0d44a3d").hexdigest(): [
            ".env:POSTGRES_PASSWORD",
            "rds.tf:password",
        ],
        hashlib.sha256(b"E1NGfulX4TjnPyD2vK534sA-5RBz2SupiwR27O0XWEw").hexdigest(): [
            ".env:JWT_SECRET",
            ".env:SESSION_SECRET",
            "compose.yml:web/SECRET_KEY",
        ],
    }
    assert next(iter(groups.values()))[0] == ".env:JWT_SECRET"  # ordered by sorted keys


def test_reused_keeps_no_values() -> None:
    values = {"a": "changeme-but-longer", "b": "changeme-but-longer", "c": "other"}
    groups = reused(values)
    text = repr(groups)
    assert "changeme" not in text
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in groups)
    assert list(groups.values()) == [["a", "b"]]


def test_reused_salts_each_call_unless_told() -> None:
    values = {"a": "changeme", "b": "changeme"}
    first, second = reused(values), reused(values)
    # A plain SHA-256 of a weak secret is reversed by lookup: keys must differ per call.
    assert hashlib.sha256(b"changeme").hexdigest() not in first
    assert first.keys() != second.keys()
    assert list(first.values()) == list(second.values()) == [["a", "b"]]
    assert reused(values, salt=b"s") == reused(values, salt=b"s")


def test_reused_skips_references_and_singletons() -> None:
    values = {"a": "${DB_PASSWORD}", "b": "${DB_PASSWORD}", "c": "", "d": "", "e": "x" * 30}
    assert reused(values) == {}


@given(st.dictionaries(st.text(max_size=5), st.sampled_from(["v1xx", "v2yy", "v3zz", "\ud800"])))
def test_reused_partitions_keys_with_equal_values(values: dict[str, str]) -> None:
    groups = reused(values, salt=b"k")
    grouped = [key for keys in groups.values() for key in keys]
    assert len(grouped) == len(set(grouped))
    for keys in groups.values():
        assert len(keys) >= 2
        assert keys == sorted(keys)
        assert len({values[key] for key in keys}) == 1
    for value in set(values.values()):
        holders = sorted(key for key, v in values.items() if v == value)
        assert (holders in groups.values()) == (len(holders) >= 2)
