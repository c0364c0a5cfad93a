"""The HTML report in headless Chromium with the network cut off: charts, numbers and verdicts show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.reporting import labels as L
from api.reporting.html_report import render_html
from kpi.certification_models import Language
from tests.browser import offline_chromium
from tests.reporting_fixtures import sample_report


@pytest.fixture(scope="module")
def browser() -> Any:
    with offline_chromium() as driver:
        yield driver


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_html_report_renders_offline_with_charts_numbers_and_verdicts(
    browser: Any, tmp_path: Path, language: Language
) -> None:
    from selenium.webdriver.common.by import By

    report = sample_report(language)
    page = tmp_path / f"report-{language}.html"
    page.write_text(render_html(report, language), encoding="utf-8")
    browser.get(page.as_uri())

    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 2 * len(report.rules)
    for chart in charts:
        assert chart.is_displayed()
        assert chart.size["width"] > 100 and chart.size["height"] > 100
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.series.assessment")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar.baseline")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart line.target")

    overall = browser.find_element(By.ID, "overall-verdict")
    assert overall.is_displayed() and overall.text == L.verdict_label("fail", language)
    table = browser.find_element(By.ID, "rules").text
    for rule in report.rules:
        assert L.label(rule.metric, language, rule) in table
        assert L.verdict_label(rule.verdict, language) in table
    for number in ("75.0%", "60.0%", "+25.0%", "2.10%", "62.5%"):
        assert number in table

    # Nothing was fetched: no resource entries, and the page names no URL to fetch.
    resources = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert resources == 0
    linked = browser.execute_script("return document.querySelectorAll('[src],[href],link,script').length")
    assert linked == 0
