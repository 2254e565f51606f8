"""The HTML checklist report in a real browser: Debian's headless Chromium (installed by .ci/run)
loads the file, runs its script, and takes a screenshot.

Chromium is required: without it these tests fail, they are not skipped.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from policyscan.checklist import load
from policyscan.cli import main
from tests.conftest import FIXTURES
from tests.tools import ensure_chromium

INSECURE = FIXTURES / "insecure-shop"
# The chart's "unmet" colour (#cf222e): the insecure fixture's bars are mostly this.
UNMET_RGB = (0xCF, 0x22, 0x2E)


def chromium() -> str:
    return ensure_chromium()


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        # Without these Chromium floods the (closed) network with update and sync requests.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def decode_png(data: bytes, max_rows: int) -> tuple[int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit RGB or RGBA, not interlaced): width, height and the first
    ``max_rows`` rows of pixels as bytes. Enough to tell a rendered page from a blank one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompressobj().decompress(idat, (width * channels + 1) * max_rows)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for index in range(min(max_rows, height)):
        start = index * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line[i] for i in range(stride) if i % channels < 3))
        previous = line
    return width, height, rows


class _Lines(HTMLParser):
    """Each checklist line's status and whether the script hid it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str | None, bool]] = []
        self.pressed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and "line" in (a.get("class") or "").split():
            self.lines.append((a.get("data-status"), "hidden" in a))
        if tag == "button" and a.get("aria-pressed") == "true":
            self.pressed.append(a.get("data-filter") or "")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "checklist.html"
    assert main(["checklist", str(INSECURE), "--format", "html", "-o", str(out)]) == 0
    return out


def test_html_is_self_contained(report: Path) -> None:
    page = report.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page  # the CSP forbids any fetch the markup might attempt
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"<(img|iframe|embed|object|video|audio|source)\b", page, re.I)
    assert not re.search(r"url\s*\(", page, re.I)
    assert not re.search(r"@import", page, re.I)
    for href in re.findall(r'href="([^"]*)"', page):
        assert "://" not in href and not href.startswith("//"), href
    assert "<style>" in page and "<script>" in page


def test_html_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    png = tmp_path / "checklist.png"
    browse(
        report.as_uri(), tmp_path / "profile-shot", f"--screenshot={png}", "--window-size=1280,2000"
    )
    data = png.read_bytes()
    assert len(data) > 20_000, "a blank page compresses to a few kilobytes"
    width, height, rows = decode_png(data, max_rows=900)
    assert (width, height) == (1280, 2000)
    pixels = {row[i : i + 3] for row in rows[::3] for i in range(0, len(row), 9)}
    assert len(pixels) > 40, f"only {len(pixels)} colours: the page did not render"
    red = bytes(UNMET_RGB)
    drawn = any(row[i : i + 3] == red for row in rows for i in range(0, len(row), 3))
    assert drawn, "the readiness chart's unmet bars are not drawn"

    dom = browse(report.as_uri(), tmp_path / "profile-dom", "--dump-dom").stdout
    assert 'data-ready="true"' in dom, "the page's script did not run"
    assert "<title>Production Deployment Checklist: insecure-shop</title>" in dom
    assert re.search(r'<section[^>]*id="readiness-chart"', dom) and "<svg" in dom
    assert "chart-row" in dom
    for section in load().sections:
        assert f">{section.title}<" in dom.replace("&amp;", "&"), section.title
    parsed = _Lines()
    parsed.feed(dom)
    assert parsed.pressed == ["all"]
    assert parsed.lines and not any(hidden for _, hidden in parsed.lines)


def test_status_filter_hides_other_lines_in_the_browser(report: Path, tmp_path: Path) -> None:
    dom = browse(report.as_uri() + "#filter=unmet", tmp_path / "profile", "--dump-dom").stdout
    parsed = _Lines()
    parsed.feed(dom)
    assert parsed.pressed == ["unmet"]
    statuses = {status for status, _ in parsed.lines}
    assert {"unmet", "manual"} <= statuses
    # A seed line is unmet when any id under it is, so no other line has an unmet sub-line
    # that would keep it shown: exactly the unmet lines remain.
    for status, hidden in parsed.lines:
        assert hidden == (status != "unmet"), status
