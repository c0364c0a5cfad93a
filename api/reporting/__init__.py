"""Certification reports as files: canonical JSON, signatures, and renderings for people.

A room of its own that the API and the command line both call (no FastAPI here):

* ``canonical`` — RFC 8785 canonical JSON of a report (what is hashed and signed);
* ``signing`` — SHA-256 and Ed25519: ``signed_report_bytes``, ``verify_report_bytes``, ``SiteKeys``;
* ``labels`` — indicator names and verdict words in Chinese and English (``label``);
* ``csv_report``, ``html_report``, ``pdf_report`` — the renderings, one language per call;
* ``charts`` and ``view`` — what the renderings share: chart geometry, formatted numbers.

See docs/reports.md.
"""

from api.reporting.canonical import CanonicalFormError, canonical_json, canonical_report
from api.reporting.csv_report import render_csv
from api.reporting.fonts import FontMissingError
from api.reporting.html_report import render_html
from api.reporting.labels import label, verdict_label
from api.reporting.pdf_report import render_pdf
from api.reporting.signing import (
    ReportKeyError,
    Signature,
    SigningError,
    SiteKeys,
    Verification,
    key_fingerprint,
    load_public_key,
    read_signature,
    report_signer,
    signed_report_bytes,
    verify_report_bytes,
    verify_with_keys,
)

__all__ = [
    "CanonicalFormError",
    "FontMissingError",
    "ReportKeyError",
    "Signature",
    "SigningError",
    "SiteKeys",
    "Verification",
    "canonical_json",
    "canonical_report",
    "key_fingerprint",
    "label",
    "load_public_key",
    "read_signature",
    "render_csv",
    "render_html",
    "render_pdf",
    "report_signer",
    "signed_report_bytes",
    "verdict_label",
    "verify_report_bytes",
    "verify_with_keys",
]
