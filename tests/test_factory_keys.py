"""``factory keys create|list|revoke`` and the demo's reusable admin key, against a real key file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.keys import KeyStore, Role
from core.settings import load_settings
from core.stores.sqlite import SqliteStore
from factory.cli import main
from factory.demo import DEMO_KEY_FILE, demo_admin_key
from tests.conftest import REPO
from tests.test_kpi_engine import ASSETS


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(f"assets: {REPO / 'config' / 'factory.yaml'}\napi:\n  keys_path: data/api-keys.sqlite\n")
    return path


def _keys(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", args[0], "--config", str(config), *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


async def test_create_prints_the_key_once_and_it_opens_the_api(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _keys(
        config, capsys, "create", "--name", "Chongqing auditor", "--role", "auditor", "--scope", "cq-demo"
    )
    assert code == 0
    key = out.strip()
    assert key.startswith("fk_") and len(key) == 59 and "\n" not in key  # stdout: the key alone, for $(...)
    assert "only time it is shown" in err and "scope cq-demo" in err

    store = KeyStore(tmp_path / "data" / "api-keys.sqlite")  # the path is relative to the settings file
    app = create_app(load_settings(config, environ={}), SqliteStore(tmp_path / "store.sqlite"), ASSETS, store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assets = await client.get("/v1/assets", headers={"X-API-Key": key})
        assert assets.status_code == 200 and [s["id"] for s in assets.json()["park"]["sites"]] == ["cq-demo"]
        listed = await client.get("/v1/keys", headers={"X-API-Key": key})
        assert listed.status_code == 403  # an auditor manages no keys


def test_list_shows_every_key_but_never_a_secret(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = [
        _keys(config, capsys, "create", "--name", name, "--role", role, "--scope", scope)[1].strip()
        for name, role, scope in [("park admin", "admin", "park"), ("line lead", "manager", "cq-demo")]
    ]
    code, out, _ = _keys(config, capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ROLE", "SCOPE"]
    assert len(rows) == 2 and "park admin" in rows[0] and "line lead" in rows[1]
    assert "never" in rows[0] and "active" in rows[0]
    for key in created:
        assert key not in out and key.split("_", 2)[2] not in out  # fk_<id>_<secret>; the secret may hold "_"
        assert key.split("_")[1] in out  # the id is what `revoke` takes
    code, out, _ = _keys(config, capsys, "list", "--json")
    listed = json.loads(out)
    assert [(k["name"], k["role"], k["scope"]) for k in listed] == [
        ("park admin", "admin", "park"),
        ("line lead", "manager", "cq-demo"),
    ]
    assert not any(key in out for key in created)


def test_revoke_takes_effect_in_the_store_at_once(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _keys(config, capsys, "create", "--name", "temp", "--role", "auditor", "--scope", "park")[1].strip()
    store = KeyStore(tmp_path / "data" / "api-keys.sqlite")
    found = store.verify(key)
    assert found is not None and found.active
    code, out, _ = _keys(config, capsys, "revoke", key.split("_")[1])
    assert code == 0 and "revoked API key" in out
    found = store.verify(key)
    assert found is not None and not found.active
    assert "revoked" in _keys(config, capsys, "list")[1]
    code, _, err = _keys(config, capsys, "revoke", "0123456789ab")
    assert code == 1 and "no API key has the id '0123456789ab'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "mars"], "unknown scope 'mars'"),
        (["--scope", "line-a"], "'line-a' lies in site 'cq-demo'"),
        (["--scope", "park", "--name", " "], "a key needs a name"),
    ],
)
def test_create_refuses_a_bad_scope_or_name(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--name": "x", "--role": "auditor"}
    extra = dict(zip(args[::2], args[1::2], strict=True))
    flat = [item for pair in {**base, **extra}.items() for item in pair]
    code, out, err = _keys(config, capsys, "create", *flat)
    assert code == 2 and out == ""
    assert message in err


def test_create_refuses_an_unknown_role(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "create", "--config", str(config), "--name", "x", "--role", "viewer", "--scope", "park"])
    assert "invalid choice: 'viewer'" in capsys.readouterr().err


def test_demo_key_is_created_once_kept_private_and_reused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "api-keys.sqlite")
    key_file = tmp_path / DEMO_KEY_FILE
    first, new = demo_admin_key(store, key_file)
    assert new and key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    found = store.verify(first)
    assert found is not None and (found.role, found.site) == (Role.ADMIN, None)
    assert demo_admin_key(store, key_file) == (first, False)
    assert len(store.list_keys()) == 1
    # Revoked (or the key store deleted): a new key replaces it.
    store.revoke(found.id)
    second, new = demo_admin_key(store, key_file)
    assert new and second != first and key_file.read_text().strip() == second
