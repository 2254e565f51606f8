"""pre-commit and pull-request mode: the real pre-commit runs this repository's hook; given file
names, policyscan reports on those files only, judged with their context as a full scan would;
--changed-since asks git which files changed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from policyscan.cli import main
from policyscan.discover import classify
from tests.conftest import ROOT, write_tree

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return proc.stdout


def _findings(capsys: pytest.CaptureFixture[str], *args: str) -> set[tuple[str, str, int, str]]:
    main([*args, "-f", "json", "--fail-on", "never"])
    payload = json.loads(capsys.readouterr().out)
    return {
        (f["rule_id"], f["location"]["path"], f["location"]["start_line"], f["fingerprint"])
        for f in payload["findings"]
    }


# -------------------------------------------------------------------------------- the hook file


def _hook() -> dict[str, Any]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    assert [h["id"] for h in hooks] == ["policyscan"]
    hook: dict[str, Any] = hooks[0]
    return hook


@pytest.mark.parametrize(
    "path",
    [
        "docker-compose.yml",
        "deploy/compose.prod.yaml",
        "docker-compose.override.yml",
        "compose.yml",
        ".env",
        "svc/.env.production",
        ".env.example",
        "prod.env",
        "main.tf",
        "infra/prod.tfvars",
        "x.tf.json",
        "terraform.tfvars.json",
        "Dockerfile",
        "api/Dockerfile.prod",
        "Containerfile",
        "web.dockerfile",
        "nginx/nginx.conf",
        "nginx/conf.d/shop.conf",
        "docker-compose.yml.example",
        "README.md",
        "src/app.py",
        "package.json",
        "compose.md",
        "Dockerfile.md",
        "main.tfstate",
        "values.yaml",
    ],
)
def test_hook_files_pattern_selects_what_policyscan_reads(path: str) -> None:
    hook = _hook()
    assert (hook["language"], hook["entry"], hook.get("pass_filenames", True)) == (
        "python",
        "policyscan",
        True,
    )
    selected = re.search(hook["files"], path) is not None
    # Every file discovery would read is passed to the hook (a .conf is passed and sniffed).
    if classify(path) is not None:
        assert selected
    else:
        assert selected == path.endswith(".conf")


# -------------------------------------------------------------------------------- named files


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("shop")
    shutil.copytree(ROOT / "fixtures" / "insecure-shop", repo, dirs_exist_ok=True)
    git(repo, "init", "-q")
    return repo


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.example",
        "docker-compose.yml",
        "backend/Dockerfile",
        "terraform/rds.tf",
        "terraform/network.tf",
        "nginx/conf.d/shop.conf",
    ],
)
def test_a_named_file_is_judged_as_in_a_full_scan(
    shop: Path, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (shop / name).exists(), f"the example repository lost {name}"
    monkeypatch.chdir(shop)
    full = _findings(capsys, ".")
    alone = _findings(capsys, name)
    assert alone == {f for f in full if f[1] == name}


def test_named_files_report_only_on_themselves_with_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        tmp_path,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            # ${APP_DEBUG} is defined by the .env beside the compose file (context that is not named);
            # ${API_TOKEN} is not defined anywhere.
            "app/docker-compose.yml": "services:\n  api:\n    image: x\n    environment:\n"
            "      DEBUG: ${APP_DEBUG}\n      TOKEN: ${API_TOKEN}\n",
            "app/.env": "APP_DEBUG=true\n",
            "other/.env": "DEBUG=true\n",
        },
    )
    monkeypatch.chdir(tmp_path / "app")
    found = _findings(capsys, "docker-compose.yml", "--select", "PSE001,PSE012")
    # Paths are relative to the repository's top, as in a full scan from there; the .env's own
    # finding (PSE001 on APP_DEBUG) and other/.env are not reported: they were not named.
    assert {(r, p, line) for r, p, line, _ in found} == {("PSE012", "app/docker-compose.yml", 6)}
    assert main(["docker-compose.yml", "--select", "PSE001,PSE012", "--no-color"]) == 1
    assert "in 1 file;" in capsys.readouterr().out


# -------------------------------------------------------------------------------- --changed-since


@pytest.fixture()
def branch(tmp_path: Path) -> Path:
    repo = write_tree(
        tmp_path / "repo",
        {
            ".env": "DEBUG=false\n",
            "old/.env": "DEBUG=true\n",
            "gone/.env": "DEBUG=false\n",
            "docker-compose.yml": "services:\n  web:\n    image: x\n",
        },
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / ".env").write_text("DEBUG=true\n")  # committed on the branch
    (repo / "gone" / ".env").unlink()  # deleted: nothing to scan
    git(repo, "commit", "-q", "-am", "change")
    (repo / "new").mkdir()
    (repo / "new" / ".env").write_text("DEBUG=1\n")  # staged
    git(repo, "add", "new/.env")
    (repo / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: x\n    environment:\n      DEBUG: 'true'\n"
    )  # unstaged
    return repo


def test_changed_since_scans_what_changed(
    branch: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(branch)
    found = _findings(capsys, "--changed-since", "main", "--select", "PSE001")
    assert sorted((p, line) for _, p, line, _ in found) == [
        (".env", 1),
        ("docker-compose.yml", 5),
        ("new/.env", 1),
    ]  # not old/.env


def test_changed_since_limited_to_paths_and_nothing_changed(
    branch: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(branch)
    found = _findings(capsys, "new", "--changed-since", "main", "--select", "PSE001")
    assert [p for _, p, _, _ in found] == ["new/.env"]
    monkeypatch.chdir(branch / "new")  # "." is where you are, as in any scan
    found = _findings(capsys, "--changed-since", "main", "--select", "PSE001")
    assert [p for _, p, _, _ in found] == ["new/.env"]
    monkeypatch.chdir(branch)
    assert main(["--changed-since", "HEAD", "old", "--no-color"]) == 0
    assert "0 findings in 0 files" in capsys.readouterr().out


def test_changed_since_errors_are_usage_errors(
    branch: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(branch)
    assert main(["--changed-since", "no-such-ref"]) == 2
    err = capsys.readouterr().err
    assert "--changed-since" in err and "no-such-ref" in err and "Traceback" not in err
    assert main(["--changed-since", "--output=x"]) == 2
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert main(["--changed-since", "main"]) == 2
    assert "git" in capsys.readouterr().err


# -------------------------------------------------------------------------------- the real pre-commit


def _pre_commit() -> str:
    found = shutil.which("pre-commit") or str(Path(sys.executable).with_name("pre-commit"))
    if not Path(found).exists():
        pytest.fail("pre-commit is a test dependency (pip install -e '.[test]')")
    return found


_SKIP = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".policyscan_cache",
    "build",
    "dist",
    "node_modules",
}


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project as a hook repository: try-repo installs it from a git commit."""
    copy = tmp_path_factory.mktemp("hook-repo") / "policyscan"

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in _SKIP or n.endswith(".egg-info")}
        if Path(directory) == ROOT / ".ci":
            skip.add("tools")  # CI's own downloads
        return skip

    shutil.copytree(ROOT, copy, ignore=ignore, symlinks=True)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "hook repository")
    return copy


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by the tests of a session: the hook's environment is built once.
    return tmp_path_factory.mktemp("pre-commit-home")


def _try_repo(
    project: Path, hook_repo: Path, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("CI", None)  # keep the hook's own output as a user sees it
    return subprocess.run(
        [
            _pre_commit(),
            "try-repo",
            str(hook_repo),
            "policyscan",
            "--verbose",
            "--color",
            "never",
            *args,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[Path]:
    repo = write_tree(
        tmp_path / "project",
        {
            "README.md": "# app\n",
            "docker-compose.yml": "services:\n  api:\n    image: app:1\n    environment:\n      DEBUG: ${APP_DEBUG}\n",
            ".env": "APP_DEBUG=false\n",
        },
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    yield repo


def test_real_pre_commit_fails_an_insecure_commit_and_passes_a_clean_one(
    project: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    # Insecure: the .env the compose file reads turns DEBUG on in production.
    (project / ".env").write_text("APP_DEBUG=true\n")
    (project / "svc").mkdir()
    (project / "svc" / ".env.production").write_text("DEBUG=true\n")
    git(project, "add", ".env", "svc/.env.production")
    proc = _try_repo(project, hook_repo, pre_commit_home)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert re.search(r"policyscan\.+Failed", output), output
    assert "svc/.env.production:1:7" in output and "PSE001" in output
    assert "Traceback" not in output

    # Fixed and staged again: the hook passes.
    (project / ".env").write_text("APP_DEBUG=false\n")
    (project / "svc" / ".env.production").write_text("DEBUG=false\n")
    git(project, "add", ".env", "svc/.env.production")
    proc = _try_repo(project, hook_repo, pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"policyscan\.+Passed", proc.stdout), proc.stdout


def test_real_pre_commit_skips_unrelated_files(
    project: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    (project / "README.md").write_text("# app\n\nDEBUG=true\n")
    git(project, "add", "README.md")
    proc = _try_repo(project, hook_repo, pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"policyscan\.+\(no files to check\)Skipped", proc.stdout), proc.stdout
