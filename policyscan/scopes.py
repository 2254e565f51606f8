"""The scopes a rule can be evaluated on; kept apart from project.py so that loading and
listing policies does not import the parsers."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "variable": "an environment variable: .env entry, compose `environment`, Dockerfile ENV/ARG",
    "compose.service": "a compose service, overrides merged and ${VAR} interpolated",
    "dockerfile.stage": "a build stage (FROM ... to the next FROM)",
    "nginx.server": "an nginx server block, includes spliced, with its effective headers",
    "nginx.location": "an nginx location block, with its effective headers",
    "terraform.resource": "a Terraform resource, var.x and local.x resolved within its module",
    "terraform.provider": "a Terraform provider block",
    "terraform.variable": "a Terraform variable block",
    "terraform.data": "a Terraform data source",
    "terraform.tfvars": "an assignment of a *.tfvars file (JSON too): `name`, `value`, `literal`",
    "project": "the whole repository (cross-file rules)",
    "env.file": "an env file as a whole: `name`, `keys` (name -> value), `count`, `template`",
    "compose.reference": "a ${VAR} that a compose file interpolates: `name`, `has_default`, "
    "`required` (${VAR:?}), `directory`",
}
