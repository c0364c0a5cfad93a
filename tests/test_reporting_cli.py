"""``factory report keygen`` and ``factory report verify``: offline, exit 0 with a summary or 1 with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.reporting.signing import SiteKeys, key_fingerprint, signed_report_bytes
from factory.cli import main
from tests.reporting_fixtures import sample_report


def _signed_file(tmp_path: Path, keys_dir: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_bytes(signed_report_bytes(sample_report("zh"), SiteKeys(keys_dir).private("site-cq")))
    return path


def test_keygen_then_verify_with_the_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_dir = tmp_path / "keys"
    assert main(["report", "keygen", "--site", "site-cq", "--keys-dir", str(keys_dir)]) == 0
    fingerprint = key_fingerprint(SiteKeys(keys_dir).public("site-cq"))
    assert fingerprint in capsys.readouterr().out
    report = _signed_file(tmp_path, keys_dir)

    assert main(["report", "verify", str(report), "--public-key", str(keys_dir / "site-cq.pub")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verified: ")
    for part in ("workshop ws-machining", "scheme cq-pilot-targets v2026.1", "verdict fail", fingerprint):
        assert part in out

    assert main(["report", "verify", str(report), "--keys-dir", str(keys_dir)]) == 0


@pytest.mark.parametrize("language", ["zh", "en"])
def test_render_verifies_then_writes_the_pdf(tmp_path: Path, capsys: pytest.CaptureFixture[str], language: str) -> None:
    SiteKeys(tmp_path).generate("site-cq")
    report = _signed_file(tmp_path, tmp_path)
    argv = ["report", "render", str(report), "--format", "pdf", "--language", language, "--keys-dir", str(tmp_path)]
    assert main(argv) == 0
    pdf = tmp_path / f"report.{language}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert "verified and rendered" in capsys.readouterr().out


def test_render_refuses_an_unverified_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SiteKeys(tmp_path).generate("site-cq")
    report = _signed_file(tmp_path, tmp_path)
    report.write_bytes(report.read_bytes() + b" ")
    out = tmp_path / "out.html"
    argv = ["report", "render", str(report), "--format", "html", "--language", "en", "--keys-dir", str(tmp_path)]
    assert main([*argv, "-o", str(out)]) == 1
    assert not out.exists()
    assert "not in canonical form" in capsys.readouterr().err


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["report", "keygen", "--site", "site-cq", "--keys-dir", str(tmp_path)]
    assert main(argv) == 0
    before = (tmp_path / "site-cq.pem").read_bytes()
    assert main(argv) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert (tmp_path / "site-cq.pem").read_bytes() == before


def test_verify_of_an_altered_file_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SiteKeys(tmp_path).generate("site-cq")
    report = _signed_file(tmp_path, tmp_path)
    report.write_bytes(report.read_bytes().replace(b'"verdict":"fail"', b'"verdict":"pass"', 1))
    assert main(["report", "verify", str(report), "--keys-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("not verified: ") and "report content altered" in err


def test_verify_against_another_sites_key_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = SiteKeys(tmp_path)
    keys.generate("site-cq")
    keys.generate("site-wz")
    report = _signed_file(tmp_path, tmp_path)
    assert main(["report", "verify", str(report), "--public-key", str(keys.public_path("site-wz"))]) == 1
    assert "not with the given public key" in capsys.readouterr().err


def test_verify_without_the_sites_public_key_names_the_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SiteKeys(tmp_path / "signer").generate("site-cq")
    report = _signed_file(tmp_path, tmp_path / "signer")
    (tmp_path / "auditor").mkdir()
    assert main(["report", "verify", str(report), "--keys-dir", str(tmp_path / "auditor")]) == 1
    assert str(tmp_path / "auditor" / "site-cq.pub") in capsys.readouterr().err


def test_the_keys_directory_defaults_to_the_settings(
    tmp_path: Path, example_assets_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"assets: {example_assets_path}\nreports:\n  keys_dir: signing-keys\n")
    monkeypatch.delenv("FACTORY_CONFIG", raising=False)
    assert main(["report", "keygen", "--site", "site-cq", "--config", str(settings)]) == 0
    assert (tmp_path / "signing-keys" / "site-cq.pem").is_file()  # relative to the settings file
    report = _signed_file(tmp_path, tmp_path / "signing-keys")
    monkeypatch.setenv("FACTORY_CONFIG", str(settings))
    assert main(["report", "verify", str(report)]) == 0
    assert "verified: " in capsys.readouterr().out


def test_without_keys_or_settings_the_command_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACTORY_CONFIG", raising=False)
    assert main(["report", "keygen", "--site", "site-cq"]) == 2
    assert "--keys-dir" in capsys.readouterr().err


def test_a_loose_private_key_is_refused_when_signing(tmp_path: Path) -> None:
    SiteKeys(tmp_path).generate("site-cq")
    os.chmod(tmp_path / "site-cq.pem", 0o644)
    from api.reporting.signing import ReportKeyError

    with pytest.raises(ReportKeyError, match="chmod 600"):
        _signed_file(tmp_path, tmp_path)
