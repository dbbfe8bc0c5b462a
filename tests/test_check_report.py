"""The HTML report: self-contained, and it renders (lanes, violation marked) in headless Chromium.

Chromium comes from the system (Debian: ``apt-get install chromium``). Without it the
rendering tests skip on a developer's machine and fail under CI (``CI`` set).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from sharedstate.check import check_history, read_history
from sharedstate.check.report import render_report, write_report

HISTORIES = Path(__file__).parent / "check_histories"
CHROMIUM = Path("/usr/bin/chromium")


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("CI must have /usr/bin/chromium (apt-get install chromium)", pytrace=False)
    pytest.skip("/usr/bin/chromium is not installed")


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)


def _violation_report(tmp_path: Path) -> Path:
    result = check_history(read_history(HISTORIES / "register-bad-stale-read.jsonl"), "register")
    return write_report(result, tmp_path / "report.html", "register-bad-stale-read")


def test_report_is_self_contained(tmp_path):
    text = _violation_report(tmp_path).read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        '"http://www.w3.org/2000/svg"', ""
    )
    assert "https://" not in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    assert "would have returned 2" in text


def test_report_escapes_what_it_embeds(tmp_path):
    result = check_history(read_history(HISTORIES / "kv-ok.jsonl"), "kv")
    text = render_report(result, title="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;" in text


def test_report_renders_lanes_and_marks_the_violation(tmp_path):
    report = _violation_report(tmp_path)
    dom = _run_chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    assert 'data-rendered="yes"' in dom, "the report's script did not finish"
    # three clients: three lanes in the zoomed view and three in the whole history
    assert dom.count('class="lane-bg lane"') == 6
    assert dom.count('class="op violation"') == 6
    assert 'class="violation-marker"' in dom
    assert "client 3's read() that returned 1" in dom


def test_linearizable_report_has_no_violation_marker(tmp_path):
    result = check_history(read_history(HISTORIES / "counter-ok.jsonl"), "counter")
    report = write_report(result, tmp_path / "ok.html")
    dom = _run_chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    assert 'data-rendered="yes"' in dom
    assert dom.count('class="lane-bg lane"') == 5
    assert 'class="violation-marker"' not in dom
    assert 'class="op violation"' not in dom


def test_report_screenshot(tmp_path):
    report = _violation_report(tmp_path)
    png = tmp_path / "report.png"
    _run_chromium(tmp_path, f"--screenshot={png}", report.as_uri())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000  # a real page, not a blank one
