"""core.once.Outage: a loss is logged once, the recovery once, the retries in between at debug level.

RepeatedWarnings (the other helper there) has its own tests in tests/test_ingest_repeated_warnings.py.
The users are checked where they log: ingest's store outage (tests/test_ingest_service.py), the KPI
worker's failing rounds and /healthz below.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from fastapi import Response

from api.context import AppContext
from api.routes.health import healthz
from core.once import Outage
from core.store import StoreHealth


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_a_loss_is_logged_once_its_retries_at_debug_and_the_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.once")
    outage = Outage(logging.getLogger("test.once"))
    assert not outage.back("store is back")  # it was never lost: nothing to say
    assert outage.lost("store lost: %s", "refused") is True
    assert outage.ongoing
    assert outage.lost("store lost: %s", "timed out") is False
    assert outage.back("store is back after %d tries", 3) is True
    assert not outage.ongoing
    assert outage.back("store is back") is False
    assert _lines(caplog) == [
        ("WARNING", "store lost: refused"),
        ("DEBUG", "store lost: timed out"),
        ("INFO", "store is back after 3 tries"),
    ]


def test_when_nothing_is_known_yet_the_first_report_is_logged_either_way(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.once")
    healthy_first = Outage(logging.getLogger("test.once"), known=False)
    assert healthy_first.back("healthy") is True
    unhealthy_first = Outage(logging.getLogger("test.once"), known=False, lost_level=logging.ERROR)
    assert unhealthy_first.lost("unhealthy") is True
    assert _lines(caplog) == [("INFO", "healthy"), ("ERROR", "unhealthy")]


class _Store:
    """A store whose health the test sets (the route only asks for it)."""

    backend = "sqlite"

    def __init__(self) -> None:
        self.ok = True

    async def health(self) -> StoreHealth:
        return StoreHealth(self.ok, self.backend, "var/store.sqlite" if self.ok else "unable to open database file")


async def test_healthz_logs_each_change_of_the_stores_health_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="api.routes.health")
    store = _Store()
    context = SimpleNamespace(
        store=store, store_outage=AppContext.__dataclass_fields__["store_outage"].default_factory()
    )
    answers = []
    for ok in (True, True, False, False, False, True, True):
        store.ok = ok
        response = Response()
        await healthz(context, response)  # type: ignore[arg-type]  # the route reads only these two
        answers.append(response.status_code)
    assert answers == [200, 200, 503, 503, 503, 200, 200]
    assert [line for line in _lines(caplog) if line[0] != "DEBUG"] == [
        ("INFO", "store sqlite is healthy: var/store.sqlite"),
        ("WARNING", "store sqlite is unhealthy: unable to open database file"),
        ("INFO", "store sqlite is healthy: var/store.sqlite"),
    ]
