"""Load YAML files into pydantic models with errors that name file, line, field path and reason."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

_Loc = tuple[str | int, ...]


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a pydantic location as a dotted path with list indices: ``workshops[0].lines[1].id``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_index(node: yaml.Node, loc: _Loc, index: dict[_Loc, int]) -> None:
    index[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[(*loc, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*loc, key), index)
            index[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*loc, i), index)


def line_of(index: dict[_Loc, int], loc: Sequence[str | int]) -> int | None:
    """The line of the deepest part of ``loc`` that exists in the file (a missing field has none)."""
    parts = tuple(loc)
    while parts:
        if parts in index:
            return index[parts]
        parts = parts[:-1]
    return index.get(())


def _invalid_timestamp(path: Path, node: yaml.Node | None, exc: ValueError) -> ConfigError:
    """The unquoted date or time PyYAML could not build (2026-02-30), with its line and field."""
    constructor = yaml.constructor.SafeConstructor()
    stack: list[tuple[yaml.Node, _Loc]] = [(node, ())] if node is not None else []
    while stack:
        current, loc = stack.pop()
        if isinstance(current, yaml.MappingNode):
            stack.extend((value, (*loc, key.value)) for key, value in reversed(current.value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*loc, n)) for n, item in reversed(list(enumerate(current.value))))
        elif isinstance(current, yaml.ScalarNode) and current.tag == "tag:yaml.org,2002:timestamp":
            try:
                constructor.construct_yaml_timestamp(current)
            except ValueError as bad:
                return ConfigError(
                    str(path),
                    f"invalid date or time {current.value!r}: {bad}",
                    line=current.start_mark.line + 1,
                    field=format_loc(loc),
                )
    return ConfigError(str(path), f"invalid value: {exc}")


def read_yaml(path: Path | str) -> tuple[Any, dict[_Loc, int]]:
    """Parse a YAML file, returning the data and an index from field paths to line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read file: {exc.strerror}") from exc
    node = None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(str(path), f"invalid YAML: {exc.problem}", line=line) from exc
    except ValueError as exc:  # PyYAML builds an unquoted date such as 2026-02-30 and fails without a position
        raise _invalid_timestamp(path, node, exc) from exc
    index: dict[_Loc, int] = {}
    if node is not None:
        _line_index(node, (), index)
    return data, index


def validation_to_config_error(path: Path | str, exc: ValidationError, index: dict[_Loc, int]) -> ConfigError:
    """Turn the first pydantic error into a ConfigError; the others are listed in its reason."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    reason = first["msg"]
    if len(errors) > 1:
        others = "; ".join(f"{format_loc(e['loc'])} (line {line_of(index, e['loc'])}): {e['msg']}" for e in errors[1:4])
        reason += f" (and {len(errors) - 1} more: {others})"
    return ConfigError(str(path), reason, line=line_of(index, loc), field=format_loc(loc))


def load_model(path: Path | str, model: type[ModelT], *, context: dict[str, Any] | None = None) -> ModelT:
    """Read ``path`` and validate it as ``model``; any problem raises ConfigError."""
    data, index = read_yaml(path)
    if data is None:
        raise ConfigError(str(path), "file is empty")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise validation_to_config_error(path, exc, index) from exc
