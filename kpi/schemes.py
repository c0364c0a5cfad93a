"""Certification schemes as versioned YAML files, and the registry that loads them.

A scheme is data, not code: an id, a version, titles in Chinese and English, where its thresholds
come from (``source``, ``verify``), a default minimum coverage and a list of rules. A rule names a
metric of ``kpi.metrics.METRICS``, the definition it uses where the metric needs one, a comparison
(``at_least`` / ``at_most`` an absolute threshold, ``increase_by`` / ``reduce_by`` a fraction of the
baseline) and a threshold. File format and the shipped schemes: docs/certification.md.

The shipped schemes live in ``kpi/schemes/*.yaml``; users add their own by dropping a file into the
directory named by the setting ``certification.schemes_dir``. Every file is validated when it
loads: a problem raises ConfigError naming the file, the line, the field and the reason, and a
rule naming an unknown metric or definition is refused with the rule's id. Two files defining the
same scheme id are refused. Each scheme keeps the SHA-256 of its file's bytes, which reports cite.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from core.assets import Identifier
from core.errors import ConfigError
from core.settings import CertificationSettings
from core.yamlconfig import format_loc, line_of, read_yaml, validation_to_config_error
from kpi.certification_models import Comparison
from kpi.metrics import METRIC_BY_KEY

SCHEME_FORMAT = 1
BUILTIN_SCHEMES_DIR = Path(__file__).resolve().parent / "schemes"
RELATIVE: frozenset[Comparison] = frozenset({"increase_by", "reduce_by"})
DEFAULT_MIN_COVERAGE = 0.9
DEFAULT_UPLOAD_THRESHOLD = 0.9


def _text(value: Any) -> Any:
    # ``version: 1`` and ``version: 2016.1`` read as numbers; a version is a name, kept as written.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Version = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=64)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Titles(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class RuleSpec(_Strict):
    """One rule as written; its metric and definition are checked against the metric registry at load."""

    id: Identifier
    metric: str
    definition: str | None = None
    comparison: Comparison
    threshold: float
    min_coverage: Share | None = Field(default=None, description="default: the scheme's min_coverage")
    upload_threshold: Share | None = Field(
        default=None, description="networking_rate only: the upload rate that makes equipment networked (0.9)"
    )
    title: Titles | None = Field(default=None, description="how the scheme words the rule; default: the metric's name")
    note: str = ""

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @property
    def relative(self) -> bool:
        return self.comparison in RELATIVE


class SchemeFile(_Strict):
    format: int = Field(default=SCHEME_FORMAT, ge=1, le=SCHEME_FORMAT)
    id: Identifier
    version: Version
    title: Titles
    source: str = Field(min_length=1, description="where the rules and thresholds come from")
    verify: str = Field(default="", description="what still needs checking against the primary source")
    min_coverage: Share = DEFAULT_MIN_COVERAGE
    rules: list[RuleSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule ready to evaluate: the scheme's defaults resolved."""

    id: str
    metric: str
    definition: str | None
    comparison: Comparison
    threshold: float
    min_coverage: float
    upload_threshold: float
    title: Titles | None
    note: str

    @property
    def relative(self) -> bool:
        return self.comparison in RELATIVE


@dataclass(frozen=True, slots=True)
class Scheme:
    id: str
    version: str
    title_zh: str
    title_en: str
    source: str
    verify: str
    min_coverage: float
    rules: tuple[Rule, ...]
    path: Path
    sha256: str  # of the file's bytes

    @property
    def relative(self) -> bool:
        """Whether any rule compares with a baseline period."""
        return any(r.relative for r in self.rules)


def _check_rules(path: Path, parsed: SchemeFile, index: dict[tuple[str | int, ...], int]) -> None:
    def fail(n: int, key: str, reason: str) -> ConfigError:
        loc = ("rules", n, key)
        return ConfigError(str(path), reason, line=line_of(index, loc), field=format_loc(loc))

    seen: dict[str, int] = {}
    for n, rule in enumerate(parsed.rules):
        if rule.id in seen:
            raise fail(n, "id", f"duplicate rule id {rule.id!r} (first used at rules[{seen[rule.id]}])")
        seen[rule.id] = n
        metric = METRIC_BY_KEY.get(rule.metric)
        if metric is None:
            known = ", ".join(sorted(METRIC_BY_KEY))
            raise fail(n, "metric", f"rule {rule.id!r}: unknown metric {rule.metric!r}; known: {known}")
        if metric.definitions:
            accepted = ", ".join(metric.definitions)
            if rule.definition is None:
                raise fail(n, "metric", f"rule {rule.id!r}: metric {rule.metric!r} needs a definition ({accepted})")
            if rule.definition not in metric.definitions:
                reason = (
                    f"rule {rule.id!r}: metric {rule.metric!r} has no definition {rule.definition!r};"
                    f" accepted: {accepted}"
                )
                raise fail(n, "definition", reason)
        elif rule.definition is not None:
            reason = f"rule {rule.id!r}: metric {rule.metric!r} takes no definition, got {rule.definition!r}"
            raise fail(n, "definition", reason)
        if rule.comparison == "increase_by" and rule.threshold <= 0:
            reason = f"rule {rule.id!r}: increase_by needs a fraction above 0 (0.2 means +20 %), got {rule.threshold:g}"
            raise fail(n, "threshold", reason)
        if rule.comparison == "reduce_by" and not 0 < rule.threshold < 1:
            reason = (
                f"rule {rule.id!r}: reduce_by needs a fraction between 0 and 1 (0.2 means −20 %),"
                f" got {rule.threshold:g}"
            )
            raise fail(n, "threshold", reason)
        if rule.upload_threshold is not None and rule.metric != "networking_rate":
            raise fail(n, "upload_threshold", f"rule {rule.id!r}: only a networking_rate rule has an upload threshold")


def load_scheme(path: Path | str) -> Scheme:
    """Load and validate one scheme file; every problem raises ConfigError naming file, line and field."""
    path = Path(path)
    data, index = read_yaml(path)
    if data is None:
        raise ConfigError(str(path), "file is empty")
    try:
        parsed = SchemeFile.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
    _check_rules(path, parsed, index)
    rules = tuple(
        Rule(
            id=r.id,
            metric=r.metric,
            definition=r.definition,
            comparison=r.comparison,
            threshold=r.threshold,
            min_coverage=r.min_coverage if r.min_coverage is not None else parsed.min_coverage,
            upload_threshold=r.upload_threshold if r.upload_threshold is not None else DEFAULT_UPLOAD_THRESHOLD,
            title=r.title,
            note=r.note,
        )
        for r in parsed.rules
    )
    return Scheme(
        id=parsed.id,
        version=parsed.version,
        title_zh=parsed.title.zh,
        title_en=parsed.title.en,
        source=parsed.source,
        verify=parsed.verify,
        min_coverage=parsed.min_coverage,
        rules=rules,
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def _scheme_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError(str(directory), "scheme directory not found")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


class SchemeRegistry:
    """Every scheme known to this deployment, by id."""

    def __init__(self, schemes: Iterable[Scheme]):
        self._schemes: dict[str, Scheme] = {}
        for scheme in schemes:
            if (first := self._schemes.get(scheme.id)) is not None:
                _, index = read_yaml(scheme.path)
                raise ConfigError(
                    str(scheme.path),
                    f"duplicate scheme id {scheme.id!r} (already defined in {first.path})",
                    line=line_of(index, ("id",)),
                    field="id",
                )
            self._schemes[scheme.id] = scheme

    @classmethod
    def load(
        cls, builtin_dir: Path | str = BUILTIN_SCHEMES_DIR, extra_dirs: Sequence[Path | str] = ()
    ) -> SchemeRegistry:
        """The shipped schemes plus every ``*.yaml`` in the extra directories (files in name order)."""
        paths = [p for d in (builtin_dir, *extra_dirs) for p in _scheme_files(Path(d))]
        return cls(load_scheme(p) for p in paths)

    @classmethod
    def from_settings(cls, settings: CertificationSettings) -> SchemeRegistry:
        """The shipped schemes plus those of ``certification.schemes_dir``, if set."""
        return cls.load(BUILTIN_SCHEMES_DIR, [settings.schemes_dir] if settings.schemes_dir is not None else [])

    def get(self, scheme_id: str) -> Scheme:
        try:
            return self._schemes[scheme_id]
        except KeyError:
            known = ", ".join(sorted(self._schemes)) or "none"
            raise KeyError(f"unknown scheme {scheme_id!r}; known: {known}") from None

    def all(self) -> list[Scheme]:
        return sorted(self._schemes.values(), key=lambda s: s.id)

    def __iter__(self) -> Iterator[Scheme]:
        return iter(self.all())

    def __contains__(self, scheme_id: object) -> bool:
        return scheme_id in self._schemes
