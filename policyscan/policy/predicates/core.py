"""Named checks that need code, implemented once; rules name them, never contain Python.

Each predicate takes the subject's facts (or the element under a quantifier), the subject, the
project and the rule's ``args``, and returns an Outcome. They never print a secret's value:
``details`` carry a redacted form and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from policyscan.model import Kind, Related, Value
from policyscan.policy.conditions import TRUE, UNKNOWN, Outcome, Predicate

if TYPE_CHECKING:
    from policyscan.project import Project, Subject


def _secret_class(name: str, args: Mapping[str, Any]) -> Any:
    from policyscan.secretstrength import SecretClass, classify_name

    forced = args.get("class")
    if forced:
        return SecretClass(forced)
    return classify_name(name)


def weak_secret(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """The subject's ``value`` (or ``args.attr``) is a literal secret strong enough for its
    class."""
    name_value = value.lookup(args.get("name_attr", "name"))
    name = name_value.as_str() if name_value is not None else None
    target = value.lookup(args.get("attr", "value"))
    if not name or target is None:
        return TRUE
    cls = _secret_class(name, args)
    if cls is None:
        return TRUE
    # Imported past the names that are no secret (most): an import statement has a cost even
    # once the module is loaded, and this runs for every variable.
    from policyscan.secretstrength import assess, is_reference, redact

    if not target.known or not target.literal:
        return UNKNOWN if not target.known else TRUE
    text = target.as_str()
    if text is None or is_reference(text):
        return TRUE
    username = _username_for(subject, project)
    weakness = assess(text, cls, username=username)
    if weakness is None:
        return TRUE
    return Outcome(
        False,
        target,
        "value",
        {"reason": weakness.reason, "redacted": redact(text), "class": cls.value},
    )


_USER_KEYS = ("POSTGRES_USER", "MYSQL_USER", "DB_USER", "DATABASE_USER", "REDIS_USER", "username")
# Terraform's variables are named in lower case (`db_username = "shop"` in a tfvars file).
_TFVARS_USER_KEYS = ("db_username", "db_user", "database_username", "master_username", "username")


def _username_for(subject: Subject, project: Project) -> str | None:
    """The user name set beside a password (same file, same service), to catch password ==
    user. Indexed once per project and scope: every secret of every file asks. Looked for in
    the subject's own scope (an env file's entries, a tfvars file's assignments), so that a
    process holding only Terraform documents never needs the others (split.py)."""
    index = _usernames(project, subject.scope)
    service = subject.facts.get("service")
    return index.get((subject.path, service.as_str() if service is not None else None))


def _usernames(project: Project, scope: str) -> dict[tuple[str, str | None], str | None]:
    keys = _TFVARS_USER_KEYS if scope == "terraform.tfvars" else _USER_KEYS

    def build() -> dict[tuple[str, str | None], str | None]:
        index: dict[tuple[str, str | None], str | None] = {}
        for other in project.subjects(scope):
            name = other.facts.lookup("name")
            if name is None or name.as_str() not in keys:
                continue
            value = other.facts.lookup("value")
            user = value.as_str() if value is not None and value.literal else None
            service = other.facts.get("service")
            key = (other.path, service.as_str() if service is not None else None)
            index.setdefault(key, user)
            # An env file's user also stands beside every password of that file.
            index.setdefault((other.path, None), user)
        return index

    return project.memo_of_scope(scope, "usernames", build)


def secret_reused(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """This literal secret's value is not also the value of another secret key."""
    compared = compared_secret(value)
    if compared is None:
        return TRUE
    groups = reuse_groups(project)
    target, text, key_name = compared
    # Per group, only a bounded sample is looked at: a file with thousands of keys sharing one
    # value must stay linear, and a message naming a handful of them says enough.
    sample = groups.get(text, [])[:64]
    others = [s for s in sample if s is not subject and _name_of(s) not in (None, key_name)]
    if not others:
        return TRUE
    related = tuple(
        Related(s.facts.lookup("value").location, "same value here")  # type: ignore[union-attr]
        for s in others[:5]
    )
    names = sorted({_name_of(s) or "" for s in others})
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return Outcome(False, target, "value", {"others": shown}, related)


def compared_secret(facts: Value) -> tuple[Value, str, str] | None:
    """A variable's literal secret value, its text and its name, when secret_reused compares
    it with the others; None when it does not (no value, not literal, a reference, no secret's
    name)."""
    target = facts.lookup("value")
    name = facts.lookup("name")
    if target is None or name is None or not target.literal or not target.known:
        return None
    from policyscan.secretstrength import classify_name, is_reference

    text = target.as_str()
    key_name = name.as_str() or ""
    if not text or is_reference(text) or classify_name(key_name) is None:
        return None
    return target, text, key_name


def _name_of(subject: Subject) -> str | None:
    name = subject.facts.lookup("name")
    return name.as_str() if name is not None else None


def reuse_groups(project: Project) -> dict[str, list[Subject]]:
    def build() -> dict[str, list[Subject]]:
        from policyscan.secretstrength import classify_name

        groups: dict[str, list[Subject]] = {}
        for s in project.subjects("variable"):
            if s.template:
                continue
            name, val = s.facts.lookup("name"), s.facts.lookup("value")
            if name is None or val is None or not val.literal or not val.known:
                continue
            text = val.as_str()
            if text and len(text) >= 4 and classify_name(name.as_str() or "") is not None:
                groups.setdefault(text, []).append(s)
        return groups

    return project.memo_of_scope("variable", "reuse", build)


_BACKUP_IMAGE = re.compile(
    r"backup|pgbackrest|wal-g|walg|barman|restic|borg|duplicity|kartoza/pg-backup|databack|mysqldump|pg_dump",
    re.IGNORECASE,
)


def backup_in_project(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """Something in the project backs up databases: a backup service in any compose file, an AWS
    Backup plan, or an RDS instance/cluster keeping automated backups."""
    found = project.memo("compose_backup_service", lambda: compose_backup_service(project))
    if found is not None:
        return found
    for _, block in project.terraform_resources(("aws_backup_plan", "aws_backup_selection")):
        return Outcome(
            True,
            None,
            "",
            {"evidence": block.address},
            (Related(Value(None, block.path, block.span).location, block.address),),
        )
    return Outcome(False, None, "", {"searched": "compose services, aws_backup_plan"})


def compose_backup_service(project: Project) -> Outcome | None:
    """The first backup service of any compose view (development ones too), as the answer it
    gives; None when there is none."""
    for view in project.compose_views:
        for name, svc in view.services.items():
            image = svc.get("image")
            command = svc.get("command")
            texts = [name, image.as_str() if image else None]
            if command is not None:
                texts.append(
                    " ".join(v.as_str() or "" for _, v in command.items())
                    if isinstance(command.data, list)
                    else command.as_str()
                )
            if any(t and _BACKUP_IMAGE.search(t) for t in texts):
                return Outcome(
                    True,
                    svc,
                    "",
                    {"evidence": f"backup service {name}"},
                    (Related(svc.location, f"backup service {name}"),),
                )
    return None


def headers_kept(
    value: Value, subject: Subject, project: Project, args: Mapping[str, Any]
) -> Outcome:
    """A location that declares its own add_header keeps every header (of ``args.headers``) that
    its enclosing context sends; nginx drops the inherited ones otherwise."""
    ctx = subject.node
    parent = ctx.parent
    if parent is None:
        return TRUE
    wanted = [h.lower() for h in args.get("headers", ())]
    lost = [h for h in wanted if h in parent.headers and h not in ctx.headers]
    if not lost:
        return TRUE
    names = ", ".join(parent.headers[h].args[0] for h in lost)
    related = tuple(
        Related(
            Value(None, parent.headers[h].path, parent.headers[h].span).location,
            f"{parent.headers[h].args[0]} set here",
        )
        for h in lost[:3]
    )
    return Outcome(False, None, "", {"lost": names}, related)


def in_kind(value: Value, subject: Subject, project: Project, args: Mapping[str, Any]) -> Outcome:
    return Outcome(subject.kind is Kind(args["kind"]))


PREDICATES: dict[str, Predicate] = {
    "weak_secret": weak_secret,
    "secret_reused": secret_reused,
    "backup_in_project": backup_in_project,
    "in_kind": in_kind,
    "headers_kept": headers_kept,
}
