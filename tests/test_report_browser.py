"""The browser tier: the demo's report rendered in headless Chromium at 1400 px, as a reviewer opens it.

Checks no horizontal overflow, one timeline per stack and server each with its end-of-life marker inside
the plot, no console errors, rows that stay short; saves a screenshot under build/browser/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from workshop.synthetic import write_sample_bucket

from browser_plugin import VIEWPORT, browser_notes
from cli.present.report import build_report, render_html
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import CollectingSink
from core.ingest.sources import LocalSource
from core.model import ObjectRef
from core.settings import DEFAULT_EVENT_SOURCES, DEFAULT_MAX_DECOMPRESSED_BYTES

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "browser"
DEMO_FILES = 300
"""`make demo`'s default bucket size: the same generated trail, the same report."""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_report_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The report `make demo` writes, from the same generated bucket through the same pipeline."""
    root = tmp_path_factory.mktemp("demo-bucket")
    write_sample_bucket(root, files=DEMO_FILES)
    pipeline = Pipeline(open=LocalSource().open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=CollectingSink(), max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES)
    events: dict[str, Any] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        for event in pipeline.ingest(ObjectRef(None, str(path), path.stat().st_size)).items:
            events.setdefault(str(event["event_id"]), event)
    report = build_report(events.values())
    BUILD.mkdir(parents=True, exist_ok=True)
    page = BUILD / "demo-report.html"
    page.write_text(render_html(report), encoding="utf-8")
    return page, report


def test_the_demo_report_fits_1400px_with_a_marked_timeline_per_stack_and_server(
        browser_page: Any, demo_report_page: tuple[Path, Any]) -> None:
    path, report = demo_report_page
    errors: list[str] = []
    browser_page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    browser_page.on("pageerror", lambda error: errors.append(str(error)))

    browser_page.goto(path.as_uri())
    browser_page.wait_for_load_state("load")
    widths = browser_page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
    overflowing = browser_page.evaluate("""[...document.querySelectorAll('main *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map(e => e.tagName + '.' + e.className).slice(0, 5)""")
    timelines = browser_page.evaluate("""[...document.querySelectorAll('svg.timeline')].map(svg => {
        const plot = svg.getBoundingClientRect(), eol = svg.querySelector('g.eol line');
        const line = eol ? eol.getBoundingClientRect() : null;
        return {target: svg.dataset.target, width: plot.width,
                eol: line ? line.left >= plot.left && line.right <= plot.right && line.height > 0 : false,
                ticks: svg.querySelectorAll('text').length};
    })""")
    tallest_row = browser_page.evaluate(
        "Math.max(...[...document.querySelectorAll('tr')].map(r => r.getBoundingClientRect().height))")
    BUILD.mkdir(parents=True, exist_ok=True)
    shot = BUILD / "demo-report-1400.png"
    browser_page.screenshot(path=str(shot), full_page=True)

    expected = {f"{t.kind}-{t.id}" for t in report.targets if t.kind in ("stack", "server")}
    assert widths[0] <= VIEWPORT["width"] and widths[1] <= VIEWPORT["width"], widths
    assert overflowing == []
    assert expected <= {t["target"] for t in timelines}
    assert all(t["eol"] for t in timelines), [t["target"] for t in timelines if not t["eol"]]
    assert all(t["ticks"] >= 8 for t in timelines)  # y labels, x dates, the end-of-life label, legend
    assert tallest_row < 100
    assert errors == []
    assert shot.stat().st_size > 10_000
    browser_notes.append(
        f"Browser tier: {shot.relative_to(REPO)} (chromium at {VIEWPORT['width']} px): no horizontal overflow, "
        f"{len(timelines)} timelines ({len(expected)} stacks and servers) each with its end-of-life marker, "
        f"rows under 100 px, no console errors")


def test_the_report_prints_on_a4_landscape_without_losing_a_timeline(
        browser_page: Any, demo_report_page: tuple[Path, Any]) -> None:
    path, report = demo_report_page
    browser_page.goto(path.as_uri())
    browser_page.emulate_media(media="print")

    pdf = browser_page.pdf(format="A4", landscape=True, print_background=True, prefer_css_page_size=True)
    width = browser_page.evaluate("document.documentElement.scrollWidth")
    shown = browser_page.evaluate("""[...document.querySelectorAll('svg.timeline')]
        .filter(svg => svg.getBoundingClientRect().width > 0).length""")

    assert pdf.startswith(b"%PDF")
    assert width <= browser_page.viewport_size["width"]
    assert shown == len(report.targets)
    (BUILD / "demo-report.pdf").write_bytes(pdf)
