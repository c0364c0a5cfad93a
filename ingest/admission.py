"""What ingest lets through between the wire format and the store: edge identity and the asset model.

Pure functions, shared by the live service (``ingest.service``) and by the replay of dead letters
(``ingest.replay``), so a replayed letter passes the same door a message passes. Each refusal is a
reason in the form dead letters carry (``samples[3].equipment: …``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.assets import AssetModel
from core.store import Point
from core.wire import EDGE_ID_PATTERN, Sample
from ingest.mapping import UnmappableSample, sample_to_point

_EDGE_ID = re.compile(EDGE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Refused:
    """A sample ingest does not store, and why."""

    reason: str


def edge_of(topic: str, topic_prefix: str) -> str | None:
    """The edge an uplink topic ``<topic_prefix>/<edge id>`` names; None for any other topic."""
    prefix = f"{topic_prefix}/"
    edge = topic[len(prefix) :] if topic.startswith(prefix) else ""
    return edge if _EDGE_ID.fullmatch(edge) else None


def not_an_uplink_topic(topic: str, topic_prefix: str) -> str:
    return f"topic {topic!r} is not an uplink topic {topic_prefix}/<edge id>"


def names_another_edge(named: str, edge: str) -> str | None:
    """The reason to refuse a batch whose payload names another edge than its topic; None if it is the same."""
    if named == edge:
        return None
    return f"edge: the payload names edge {named!r} but came on the uplink topic of edge {edge!r}"


def admit_sample(sample: Sample, index: int, edge: str, assets: AssetModel) -> Point | Refused:
    """The point to store for sample ``index`` of a batch from ``edge``, or why it is refused.

    Refused: equipment the asset model does not know, equipment it assigns to another gateway, and
    a value that cannot become a point of its measurement.
    """
    if sample.equipment not in assets:
        return Refused(
            f"samples[{index}].equipment: unknown equipment {sample.equipment!r}"
            f" (not in the asset model {assets.source})"
        )
    placement = assets.placement(sample.equipment)
    if placement.gateway is not None and placement.gateway != edge:
        return Refused(
            f"samples[{index}].equipment: {sample.equipment!r} is reported by gateway"
            f" {placement.gateway!r} in the asset model, not by edge {edge!r}"
        )
    try:
        return sample_to_point(sample, placement)
    except UnmappableSample as exc:
        return Refused(f"samples[{index}].value: {exc}")
