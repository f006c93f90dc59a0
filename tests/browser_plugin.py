"""pytest plugin: a headless Chromium page for the browser tier, and the closing note of what it checked.

``browser_page`` (function): a 1400 x 900 page in headless Chromium ($CHROMIUM, a ``chromium`` on PATH, or
the one `make browser` fetched from npm: tests/browser_setup.py), driven by Playwright's Python package
without its own browser download; a fresh empty profile each session. When it cannot run, the test is
skipped with one line saying why, or fails when CI=true (the tier must not pass silently).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from browser_setup import chromium_path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}

browser_notes: list[str] = []
"""Lines for the terminal summary: the screenshot's path and what was checked."""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"the browser tier cannot run, and CI=true makes that a failure: {reason}", pytrace=False)
    pytest.skip(f"the browser tier cannot run (CI=true fails instead): {reason}")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _unavailable("no Chromium: none on PATH or in $CHROMIUM, and none fetched (`make browser` fetches one)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is missing ({exc}); run make setup")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Error as exc:
            _unavailable(f"{executable} did not start: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=VIEWPORT, java_script_enabled=True, offline=True)
    page = context.new_page()
    yield page
    context.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in browser_notes:
        terminalreporter.write_line(line)
