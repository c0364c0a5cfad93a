"""Settings come from one YAML file plus the environment; secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def _config(tmp_path: Path, example_assets_path: Path, extra: str = "") -> Path:
    path = tmp_path / "factory-settings.yaml"
    path.write_text(f"assets: {example_assets_path}\nstore:\n  kind: sqlite\n  sqlite_path: data/x.sqlite\n{extra}")
    return path


def test_relative_paths_are_relative_to_the_file(tmp_path: Path, example_assets_path: Path) -> None:
    settings = load_settings(_config(tmp_path, example_assets_path), environ={})
    assert settings.store.sqlite_path == tmp_path / "data" / "x.sqlite"


def test_environment_overrides_nested_keys(tmp_path: Path, example_assets_path: Path) -> None:
    settings = load_settings(
        _config(tmp_path, example_assets_path),
        environ={
            "FACTORY__STORE__KIND": "influxdb",
            "FACTORY__API__PORT": "9123",
            "FACTORY_INFLUX_TOKEN": "s3cr3t-token-from-env",
        },
    )
    assert settings.store.kind == "influxdb"
    assert settings.api.port == 9123
    assert settings.store.influx_token is not None
    assert settings.store.influx_token.get_secret_value() == "s3cr3t-token-from-env"


def test_secret_in_file_is_refused_with_its_line(tmp_path: Path, example_assets_path: Path) -> None:
    path = _config(tmp_path, example_assets_path, "broker:\n  host: mqtt\n  password: hunter2\n")
    with pytest.raises(
        ConfigError, match=r":7: broker.password: secrets are not read from files.*FACTORY_BROKER_PASSWORD"
    ):
        load_settings(path, environ={})


def test_placeholder_secret_in_environment_is_refused(tmp_path: Path, example_assets_path: Path) -> None:
    with pytest.raises(ConfigError, match="FACTORY_INFLUX_TOKEN: refusing a placeholder"):
        load_settings(_config(tmp_path, example_assets_path), environ={"FACTORY_INFLUX_TOKEN": "changeme"})


def test_bad_value_names_line_and_field(tmp_path: Path, example_assets_path: Path) -> None:
    path = _config(tmp_path, example_assets_path, "api:\n  port: 99999\n")
    with pytest.raises(ConfigError, match=r":6: api.port: Input should be less than or equal to 65535"):
        load_settings(path, environ={})


def test_the_key_store_path_is_relative_to_the_file(tmp_path: Path, example_assets_path: Path) -> None:
    settings = load_settings(_config(tmp_path, example_assets_path, "api:\n  keys_path: keys/api.sqlite\n"), environ={})
    assert settings.api.keys_path == tmp_path / "keys" / "api.sqlite"
