"""CSV, HTML and PDF renderings of a certification report, in Chinese and English."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pypdf
import pytest

from api.reporting import labels as L
from api.reporting.csv_report import COLUMNS, render_csv
from api.reporting.fonts import FontMissingError, font_for
from api.reporting.html_report import render_html
from api.reporting.pdf_report import render_pdf
from api.reporting.signing import Signature
from kpi.certification_models import Language
from tests.reporting_fixtures import SAMPLE_RULES, sample_report

# Every metric of the certification metric registry (kpi/certification.py); the label table covers them all.
REGISTRY_METRICS = (
    "efficiency",
    "defect_rate",
    "operating_cost",
    "development_cycle",
    "key_process_cnc_rate",
    "nc_equipment_share",
    "networking_rate",
    "upload_rate",
    "energy_per_unit",
    "energy_per_value_added",
    "co2_intensity",
    "water_intensity",
    "labour_productivity",
    "output_intensity",
    "digital_rd_tool_rate",
    "recognised_digital_workshops",
    "energy_utilisation",
)
VERDICTS = {"en": ("Pass", "Fail", "Insufficient evidence"), "zh": ("通过", "未通过", "证据不足")}
SIGNATURE = Signature("Ed25519", "site-cq", "7aa81d9d" * 8, "08db7178" * 8, "c2ln")


@pytest.mark.parametrize("metric", REGISTRY_METRICS)
def test_every_registry_metric_has_a_chinese_and_an_english_name(metric: str) -> None:
    zh, en = L.label(metric, "zh"), L.label(metric, "en")
    assert re.search(r"[\u4e00-\u9fff]", zh), zh
    assert en and en != metric and not re.search(r"[\u4e00-\u9fff]", en)


def test_indicators_use_the_standards_chinese_names() -> None:
    # spec kpi.md section 8
    assert L.label("key_process_cnc_rate", "zh") == "关键工序数控化率"
    assert L.label("networking_rate", "zh") == "设备联网率"
    assert L.label("defect_rate", "zh") == "不良品率"
    assert L.label("labour_productivity", "zh") == "全员劳动生产率"
    assert "综合能耗" in L.label("energy_per_unit", "zh")
    words = [L.verdict_label(v, "zh") for v in ("pass", "fail", "insufficient_evidence")]
    assert words == ["通过", "未通过", "证据不足"]


def test_an_unknown_metric_falls_back_to_the_rules_own_labels() -> None:
    rule = sample_report().rules[-1]
    assert rule.metric == "spindle_hours"
    assert L.label(rule.metric, "zh", rule) == "主轴运行小时"
    assert L.label(rule.metric, "en", rule) == "Spindle hours"


def _csv_rows(text: str, *, line_breaks_in_fields: bool = False) -> list[list[str]]:
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 byte-order mark for Excel"
    body = data.decode("utf-8-sig")
    assert "\r\n" in body
    if not line_breaks_in_fields:
        assert "\n" not in body.replace("\r\n", ""), "RFC 4180 line ends"
    return list(csv.reader(io.StringIO(body, newline="")))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_csv_parses_back_to_the_reports_numbers_and_verdicts(language: Language) -> None:
    report = sample_report(language)
    rows = _csv_rows(render_csv(report, language, SIGNATURE))
    assert len({len(row) for row in rows}) == 1, "every record has the same number of fields"
    header = {row[0]: row[1] for row in rows[: rows.index([""] * len(COLUMNS))]}
    assert header[L.text("verdict", language)] == L.verdict_label("fail", language)
    assert header[L.text("key_id", language)] == SIGNATURE.key_id
    assert report.scope in header[L.text("scope", language)]
    start = rows.index(list(COLUMNS))
    table = [dict(zip(COLUMNS, row, strict=True)) for row in rows[start + 2 :]]
    assert [r["id"] for r in table] == [rule.id for rule in report.rules]
    for row, rule in zip(table, report.rules, strict=True):
        assert row["verdict"] == L.verdict_label(rule.verdict, language)
        assert row["indicator"] == L.label(rule.metric, language, rule)
        assert float(row["threshold"]) == rule.threshold
        assert (float(row["assessment"]) if row["assessment"] else None) == rule.assessment.value
        assert (float(row["change"]) if row["change"] else None) == rule.change
        baseline = rule.baseline.value if rule.baseline is not None else None
        assert (float(row["baseline"]) if row["baseline"] else None) == baseline


def test_csv_quotes_fields_with_commas_quotes_and_line_breaks() -> None:
    report = sample_report("en")
    odd = report.model_copy(update={"scope_name": 'Shop "A", line\n2'})
    rows = _csv_rows(render_csv(odd, "en"), line_breaks_in_fields=True)
    assert any('Shop "A", line\n2' in cell for row in rows for cell in row)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data", "formaction"):
                self.urls.append(value or "")
            if name == "style":
                self.styles.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_html_is_one_self_contained_page(language: Language) -> None:
    page = render_html(sample_report(language), language, SIGNATURE)
    parsed = _Collector()
    parsed.feed(page)
    assert parsed.urls == [], "no linked resource of any kind"
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    assert not any("url(" in css or "@import" in css for css in parsed.styles)
    assert "://" not in page
    assert parsed.tags.count("svg") == 2 * len(sample_report().rules)  # monthly series + bar pair per rule
    for word in VERDICTS[language]:
        assert word in page
    assert SIGNATURE.key_id in page


def test_html_escapes_whatever_the_report_holds() -> None:
    report = sample_report("en").model_copy(update={"scope_name": "<script>alert(1)</script>"})
    page = render_html(report, "en")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_html_shows_thresholds_numbers_and_provenance() -> None:
    report = sample_report("zh")
    page = render_html(report, "zh")
    assert "较基准期提高不少于 20.0%（评价值 ≥ 1.2 × 基准值）" in page
    assert "75.0%" in page and "60.0%" in page and "+25.0%" in page
    assert report.provenance.asset_model_sha256 in page
    assert "in-0007 v2" in page


def _pdf_text(data: bytes) -> str:
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"[\s\x00]+", "", text)  # pypdf spaces out CJK glyphs


@pytest.mark.parametrize("language", ["zh", "en"])
def test_pdf_text_holds_every_verdict_and_indicator(language: Language) -> None:
    report = sample_report(language)
    data = render_pdf(report, language, SIGNATURE)
    assert data.startswith(b"%PDF-")
    text = _pdf_text(data)
    for word in VERDICTS[language]:
        assert re.sub(r"\s", "", word) in text
    for rule in report.rules:
        assert re.sub(r"\s", "", L.label(rule.metric, language, rule)) in text
    assert SIGNATURE.key_id in text


def test_pdf_embeds_the_cjk_font() -> None:
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(sample_report("zh"), "zh")))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = [str(font.get_object()["/BaseFont"]) for font in fonts.values()]
    assert any("NotoSansCJK" in name for name in names), names
    descendants = [font.get_object()["/DescendantFonts"][0].get_object() for font in fonts.values()]
    assert all("/FontFile2" in d["/FontDescriptor"] or "/FontFile3" in d["/FontDescriptor"] for d in descendants)


def test_the_same_report_renders_to_the_same_pdf() -> None:
    assert render_pdf(sample_report("en"), "en") == render_pdf(sample_report("en"), "en")


def test_a_character_outside_the_working_face_still_renders() -> None:
    # 龘 is not in GB 2312, so the full font face is embedded for this report.
    report = sample_report("zh", SAMPLE_RULES[:2]).model_copy(update={"scope_name": "龘车间"})
    assert "龘车间" in _pdf_text(render_pdf(report, "zh"))


def test_a_report_within_gb2312_embeds_the_cached_working_face() -> None:
    choice = font_for(set("认定评价报告 关键工序数控化率 通过 未通过 证据不足 Pass ≥ ≤ × −"))
    assert choice.face == 0 and choice.path.suffix == ".ttf"  # the TrueType working face, not the collection


def test_the_reporting_room_does_not_need_fastapi() -> None:
    # The command line verifies and renders reports on an auditor's machine, without the API's stack.
    import subprocess
    import sys

    code = "import sys, api.reporting, factory.report_cli; print('fastapi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_missing_cjk_font_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(FontMissingError, match="fonts-noto-cjk"):
        font_for({"a"}, source=tmp_path / "NotoSansCJK-Regular.ttc")


def test_a_report_from_the_evaluator_signs_verifies_and_renders() -> None:
    """The certification evaluator's own output (pilot targets over generated history with a data gap:
    three rules insufficient evidence, one pass), written by the certification branch's history test."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from api.reporting.signing import signed_report_bytes, verify_report_bytes
    from kpi.certification_models import CertificationReport

    path = Path(__file__).parent / "data" / "certification-report-gap.json"
    report = CertificationReport.model_validate_json(path.read_text(encoding="utf-8"))
    key = Ed25519PrivateKey.generate()
    checked = verify_report_bytes(signed_report_bytes(report, key), key.public_key())
    assert checked.ok and checked.report == report
    for language in ("zh", "en"):
        text = _pdf_text(render_pdf(report, language, checked.signature))
        for rule in report.rules:
            assert L.verdict_label(rule.verdict, language).replace(" ", "") in text
        page = render_html(report, language, checked.signature)
        assert page.count("<svg") == 2 * len(report.rules)
        rows = _csv_rows(render_csv(report, language))
        assert sum(1 for row in rows if row[0] in {r.id for r in report.rules}) == len(report.rules)
