"""The CJK font a PDF report embeds: Debian's Noto Sans CJK (fonts-noto-cjk), Simplified Chinese face.

Embedding subsets the font per document. Subsetting the full collection face (65,535 CFF glyphs)
costs about 0.2 s per PDF and parsing it another 0.2 s, so the first PDF on a machine cuts a
*working face* once (about 10 s): every glyph of ASCII, Latin-1, common punctuation and symbols, CJK
punctuation, full-width forms and the 6,763 hanzi of GB 2312 (about 7,700 glyphs), with its outlines
converted from cubic (CFF) to quadratic (TrueType) curves, because subsetting and writing TrueType
outlines is several times faster than CFF (a report's font then costs about 0.05 s). It is cached on disk
(``$FACTORY_FONT_CACHE``, else ``$XDG_CACHE_HOME/smart-factory``, else ``~/.cache/smart-factory``)
under a name derived from the source font's path, size and modification time, so an updated
package makes a new one. A document with a character outside the working face uses the full face,
so nothing is ever missing; a cache that cannot be written costs only speed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools import subset as ftsubset
from fontTools import ttLib
from fontTools import version as fonttools_version
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen

log = logging.getLogger(__name__)

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FACE = 2  # in NotoSansCJK-Regular.ttc: 0 JP, 1 KR, 2 SC (Simplified Chinese), 3 TC, 4 HK
FONT_CACHE_ENV = "FACTORY_FONT_CACHE"
_BUILDING = threading.Lock()  # one cut at a time within a process (threads share the pid of the temp file)
_REPERTOIRE_VERSION = "1"
_RANGES = (
    (0x20, 0x7F),  # ASCII
    (0xA0, 0x250),  # Latin-1 and Latin Extended-A/B
    (0x370, 0x400),  # Greek (Δ, μ)
    (0x2000, 0x2070),  # general punctuation (– — “ ” …)
    (0x2070, 0x20A0),  # superscripts and subscripts (², ₂)
    (0x2100, 0x2200),  # letterlike symbols, number forms, arrows
    (0x2200, 0x2300),  # mathematical operators (≤ ≥ × −)
    (0x2460, 0x2500),  # enclosed alphanumerics
    (0x25A0, 0x2600),  # geometric shapes
    (0x3000, 0x3040),  # CJK symbols and punctuation
    (0xFF00, 0xFFF0),  # full-width forms
)


class FontMissingError(RuntimeError):
    """The CJK font is not installed."""


@dataclass(frozen=True, slots=True)
class FontChoice:
    path: Path
    face: int


def _cache_dir() -> Path:
    explicit = os.environ.get(FONT_CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "smart-factory"


def require_font(path: Path = CJK_FONT) -> Path:
    if not path.is_file():
        raise FontMissingError(
            f"the PDF report needs the CJK font {path}, which is not installed;"
            " install Debian's package fonts-noto-cjk (apt-get install fonts-noto-cjk)"
        )
    return path


def _repertoire() -> set[int]:
    chars: set[int] = set()
    for low, high in _RANGES:
        chars.update(range(low, high))
    for row in range(0xB0, 0xF8):  # GB 2312 hanzi: rows 16-87
        for cell in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes((row, cell)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return chars


def _working_face_path(source: Path) -> Path:
    info = source.stat()
    key = f"{source.resolve()}|{info.st_size}|{info.st_mtime_ns}|{CJK_FACE}|{fonttools_version}|{_REPERTOIRE_VERSION}"
    return _cache_dir() / f"NotoSansCJK-SC-working-{hashlib.sha256(key.encode()).hexdigest()[:16]}.ttf"


def _to_truetype(font: ttLib.TTFont) -> None:
    """Replace the CFF outlines by TrueType ones (cubic curves approximated within 1 font unit)."""
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = ttLib.newTable("loca")
    glyf = font["glyf"] = ttLib.newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    del font["CFF "]
    maxp = font["maxp"] = ttLib.newTable("maxp")
    maxp.tableVersion = 0x00010000
    for name in [
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
        "maxPoints",
        "maxContours",
        "maxCompositePoints",
        "maxCompositeContours",
        "maxComponentDepth",
        "numGlyphs",
    ]:
        setattr(maxp, name, 0)
    maxp.maxZones = 1
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\x00\x01\x00\x00"


def _build_working_face(source: Path, target: Path) -> None:
    font = ttLib.TTFont(source, fontNumber=CJK_FACE, lazy=True, recalcTimestamp=False)
    available = font.getBestCmap()
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True, layout_features=[])
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "VORG", "vhea", "vmtx"]
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=[c for c in _repertoire() if c in available])
    subsetter.subset(font)
    _to_truetype(font)
    buffer = io.BytesIO()
    font.save(buffer)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, target)


@cache
def _working_face(source: Path) -> tuple[Path, frozenset[int]] | None:
    """The cached working face and the characters it has; None if it cannot be made."""
    target = _working_face_path(source)
    try:
        with _BUILDING:
            if not target.is_file():
                log.info("cutting the PDF working face of %s into %s (once per machine)", source, target)
                _build_working_face(source, target)
        cmap = ttLib.TTFont(target, lazy=True).getBestCmap()
    except (OSError, ttLib.TTLibError) as exc:
        log.warning("PDF font cache %s unusable (%s); embedding from the full font, which is slower", target, exc)
        return None
    return target, frozenset(cmap)


def prepare_font_cache(source: Path = CJK_FONT) -> Path | None:
    """Cut the working face now (a service can call this at start, off its event loop); its path or None."""
    require_font(source)
    working = _working_face(source)
    return working[0] if working is not None else None


@cache
def _full_face_characters(source: Path) -> frozenset[int]:
    return frozenset(ttLib.TTFont(source, fontNumber=CJK_FACE, lazy=True).getBestCmap())


def font_for(characters: set[str], source: Path = CJK_FONT) -> FontChoice:
    """The font file (and face) to embed for a document made of ``characters``."""
    require_font(source)
    working = _working_face(source)
    if working is not None:
        path, available = working
        lacking = {ord(c) for c in characters if c not in "\r\n\t"} - available
        if not lacking or not lacking & _full_face_characters(source):  # the full face has none of them either
            return FontChoice(path, 0)
    return FontChoice(source, CJK_FACE)
