"""Where a meter's readings are: topic filters with named wildcards, templates over them, JSON paths.

Pure functions and small frozen objects, compiled once from a ``MeterSource`` when the collector
starts (and by ``factory check-config``); a syntax error is a ``ValueError`` naming what is wrong.

* **Topic filter**: MQTT levels separated by ``/``; ``+`` one level, ``#`` the rest (last level
  only), ``{name}`` a ``+`` that templates can name. The broker is sent the filter with named
  levels as ``+``.
* **Template**: text with ``{name}`` (a named level) or ``{n}`` (the n-th wildcard, from 1; ``#``
  counts as one, its levels joined by ``/``). ``meter-{1}``, ``{device}``, ``power_l{phase}_kw``.
* **JSON path**: ``$`` is the whole payload (a meter that publishes a bare number); otherwise keys
  separated by dots, list items by index, ``[n]`` or ``.n`` (negative counts from the end), and
  keys with dots or brackets quoted: ``energy.total``, ``phases[0].kw``, ``phases.0.kw``,
  ``$.readings[-1].value``, ``["a.b"].c``. A dotted segment of digits is a key if the object has
  it, else a list index (``0`` in ``{"0": ...}`` and in ``[...]`` both work).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*|[1-9][0-9]*)\}")
_NAMED_LEVEL = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A compiled topic filter; ``match`` returns the text of each wildcard, or None."""

    text: str
    levels: tuple[str | None, ...]  # None: a single-level wildcard
    multi: bool  # ends in '#'
    names: dict[str, int]  # named level -> wildcard position (0-based)

    @property
    def subscription(self) -> str:
        """The filter as the broker reads it (named levels as '+')."""
        return "/".join(["+" if level is None else level for level in self.levels] + (["#"] if self.multi else []))

    @property
    def wildcards(self) -> int:
        return sum(level is None for level in self.levels) + int(self.multi)

    def covers(self, other: TopicFilter) -> bool:
        """Whether every topic ``other`` matches is matched by this filter too."""
        if len(other.levels) < len(self.levels) or (
            not self.multi and (other.multi or len(other.levels) > len(self.levels))
        ):
            return False
        return all(mine is None or mine == theirs for mine, theirs in zip(self.levels, other.levels, strict=False))

    def match(self, topic: str) -> tuple[str, ...] | None:
        parts = topic.split("/")
        fixed = len(self.levels)
        if len(parts) < fixed or (len(parts) > fixed and not self.multi):
            return None
        # MQTT 4.7.2: wildcards at the first level do not match topics starting with '$' ($SYS/...).
        if topic.startswith("$") and (not self.levels or self.levels[0] is None):
            return None
        captured: list[str] = []
        for level, part in zip(self.levels, parts, strict=False):
            if level is None:
                captured.append(part)
            elif level != part:
                return None
        if self.multi:
            captured.append("/".join(parts[fixed:]))
        return tuple(captured)


def compile_topic_filter(text: str) -> TopicFilter:
    if not text or "\x00" in text:
        raise ValueError("a topic filter must be non-empty text without NUL")
    if text.startswith("$share/"):
        raise ValueError("shared subscriptions ($share/...) are not for meters: every reading must reach this edge")
    raw = text.split("/")
    levels: list[str | None] = []
    names: dict[str, int] = {}
    multi = False
    position = 0
    for n, level in enumerate(raw):
        if level == "#":
            if n != len(raw) - 1:
                raise ValueError(f"'#' must be the last level of {text!r}")
            multi = True
        elif level == "+":
            levels.append(None)
            position += 1
        elif named := _NAMED_LEVEL.match(level):
            name = named.group(1)
            if name in names:
                raise ValueError(f"level name {{{name}}} appears twice in {text!r}")
            names[name] = position
            levels.append(None)
            position += 1
        elif any(c in level for c in "+#{}"):
            raise ValueError(
                f"level {level!r} of {text!r} mixes text and wildcards (a level is '+', '#', '{{name}}' or plain text)"
            )
        else:
            levels.append(level)
    return TopicFilter(text, tuple(levels), multi, names)


@dataclass(frozen=True, slots=True)
class Template:
    """Text with placeholders for wildcards; ``render`` fills them from one filter's captures."""

    text: str
    parts: tuple[str | int | tuple[str], ...]  # text, wildcard position, or (name,)

    @property
    def is_plain(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def check(self, topic: TopicFilter) -> None:
        """Every placeholder must name a wildcard of ``topic``."""
        for part in self.parts:
            if isinstance(part, tuple) and part[0] not in topic.names:
                known = ", ".join(f"{{{n}}}" for n in topic.names) or "none"
                raise ValueError(f"{{{part[0]}}} in {self.text!r} is not a named level of {topic.text!r} ({known})")
            if isinstance(part, int) and part >= topic.wildcards:
                raise ValueError(f"{{{part + 1}}} in {self.text!r}: {topic.text!r} has {topic.wildcards} wildcard(s)")

    def render(self, topic: TopicFilter, captured: Sequence[str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, int):
                out.append(captured[part])
            else:
                out.append(captured[topic.names[part[0]]])
        return "".join(out)


def compile_template(text: str) -> Template:
    parts: list[str | int | tuple[str]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[at : match.start()])
        ref = match.group(1)
        parts.append(int(ref) - 1 if ref.isdigit() else (ref,))
        at = match.end()
    parts.append(text[at:])
    for part in parts:
        if isinstance(part, str) and ("{" in part or "}" in part):
            raise ValueError(f"{text!r}: a placeholder is {{name}} or {{number}}, and braces are for nothing else")
    return Template(text, tuple(p for p in parts if p != ""))


# --- JSON paths ----------------------------------------------------------------------------------

_QUOTED = re.compile(r"""\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\]""")
_INDEX = re.compile(r"\[\s*(-?[0-9]+)\s*\]")
_NAME = re.compile(r"[^.\[\]]+")

Step = tuple[str, str | int]  # ("key", k), ("index", n) or ("either", "0"): key if present, else index


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    def extract(self, document: Any) -> Any:
        """The value at this path; ``KeyError`` names the part of the path that is not there."""
        node = document
        for n, (kind, step) in enumerate(self.steps):
            if kind != "index" and isinstance(node, dict) and step in node:
                node = node[step]
                continue
            if kind != "key" and isinstance(node, list):
                index = int(step)
                if -len(node) <= index < len(node):
                    node = node[index]
                    continue
            raise KeyError(_render_steps(self.steps[: n + 1]))
        return node


def _render_steps(steps: Sequence[Step]) -> str:
    out = ""
    for kind, step in steps:
        if kind == "index":
            out += f"[{step}]"
        else:
            out += f".{step}" if out else str(step)
    return out or "$"


def compile_json_path(text: str) -> JsonPath:
    source = text.strip()
    if source in ("", "$"):
        return JsonPath("$", ())
    rest = source[1:] if source.startswith("$") else source
    if source.startswith("$") and rest and rest[0] not in ".[":
        raise ValueError(f"JSON path {text!r}: '$' is followed by '.' or '['")
    steps: list[Step] = []
    at = 0
    expect_name = not source.startswith("$")
    while at < len(rest):
        if rest[at] == ".":
            if expect_name:
                raise ValueError(f"JSON path {text!r}: an empty key at {at + len(source) - len(rest)}")
            at += 1
            expect_name = True
            continue
        if rest[at] == "[":
            if quoted := _QUOTED.match(rest, at):
                key = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                steps.append(("key", re.sub(r"\\(.)", r"\1", key)))
                at = quoted.end()
            elif index := _INDEX.match(rest, at):
                steps.append(("index", int(index.group(1))))
                at = index.end()
            else:
                raise ValueError(
                    f"JSON path {text!r}: at {at + len(source) - len(rest)}, '[' opens an index or a quoted key"
                )
            expect_name = False
            continue
        name = _NAME.match(rest, at)
        if name is None or not expect_name:
            raise ValueError(f"JSON path {text!r}: unexpected {rest[at]!r} at {at + len(source) - len(rest)}")
        word = name.group(0)
        steps.append(("either", word) if re.fullmatch(r"-?[0-9]+", word) else ("key", word))
        at = name.end()
        expect_name = False
    if expect_name and source.endswith("."):
        raise ValueError(f"JSON path {text!r} ends with '.'")
    return JsonPath(source, tuple(steps))
