"""Debian's Chromium, headless, for tests that look at a rendered page (never a downloaded
browser). Screenshots go to test-artifacts/ so a person can look at them after a run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


def _command(profile: Path) -> list[str]:
    assert CHROMIUM is not None
    return [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after Chromium has loaded it."""
    return subprocess.run(
        [*_command(profile), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def screenshot(page: Path, name: str, profile: Path, size: str = "1000,2200") -> bytes:
    """A PNG of the page, also kept as test-artifacts/NAME.png; returns its bytes."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [*_command(profile), f"--screenshot={shot}", f"--window-size={size}", page.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return shot.read_bytes()


def page_shot(page: object, name: str) -> Path:
    """A Playwright page's full-length PNG, kept as test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
