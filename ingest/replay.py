"""Replaying dead letters once their cause is fixed, through the door a live message passes.

The same checks as ingest, in the same order: the edge the topic names, the wire format's bounds
(``core.wire``), a payload naming another edge, the asset model and the edge's right to report the
equipment (``ingest.admission``), then the store's own refusals. Timestamps are judged against the
time the letter was *received*, not the time of the replay: a sample that was ahead of ingest's
clock is not let in because time has passed since, and a letter that passed the window then passes
it now. (Raising ``ingest.max_past_days`` lets in samples the window refused.)

What a replay does with each letter that has not been replayed before:

* every point it holds is stored: it is marked replayed (``replayed_at``) and kept as the record of
  what came and when it was let in, until retention removes it;
* it is still refused: it stays waiting, with the reason it fails for now;
* it is a whole message whose envelope now passes but some of whose samples do not: it is marked
  replayed and those samples become letters of their own, with the message's topic, edge, ``seq``
  and time of arrival, as ingest would have kept them.

Replaying again changes nothing: letters replayed are skipped, and the points a second replay might
write (after a crash between the write and the marking) have the same series and timestamps, which
overwrite identically. Sequence numbers are not checked: a replay is not a resend from the edge.
If the store is unavailable the replay stops with a ``StoreError``; the letters settled before stay
settled and the rest wait for the next replay.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.assets import AssetModel
from core.errors import StoreRejected, WireFormatError
from core.settings import Settings
from core.store import Point, Store
from core.stores.lineprotocol import LineProtocolWriter, encode_point
from core.wire import DecodedBatch, Sample, decode_batch, decode_sample, sample_to_json
from ingest.admission import Refused, admit_sample, edge_of, names_another_edge, not_an_uplink_topic
from ingest.deadletter import DeadLetter, DeadLetterStore, LetterFilter, LetterKind, Settled

PAGE = 100  # letters read, checked, written and settled together (each up to 1 MiB of payload)

_SAMPLE_INDEX = re.compile(r"^samples\[(\d+)\]")


@dataclass(slots=True)
class ReplayReport:
    letters: int = 0  # letters looked at (waiting ones the filter selects)
    stored: int = 0  # letters marked replayed: every point stored (a message's samples that fail are split off)
    refused: int = 0  # letters still refused, kept with their reason
    split: int = 0  # letters of their own for samples of replayed messages that are still refused
    points_written: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why letters are still refused (split ones too)


@dataclass(slots=True)
class _Point:
    """A point a letter holds, with what to keep if the store refuses it."""

    point: Point
    sample: Sample
    letter: _Checked


@dataclass(slots=True)
class _Checked:
    """One letter after the checks: its points, or why it is refused, and letters split from it."""

    letter: DeadLetter
    points: list[_Point] = field(default_factory=list)
    reason: str | None = None
    split: list[DeadLetter] = field(default_factory=list)
    edge: str | None = None  # the edge its topic names, and the seq of its batch, once known
    seq: int | None = None

    def split_off(self, reason: str, payload: bytes) -> None:
        """Keep one sample of this message as a letter of its own (with the message's time of arrival)."""
        letter = self.letter
        split = DeadLetter(
            letter.received_at, letter.topic, self.edge, self.seq, reason, payload, kind=LetterKind.SAMPLE
        )
        self.split.append(split)

    def settled(self) -> Settled:
        assert self.letter.id is not None
        return Settled(self.letter.id, self.reason, tuple(self.split))


def _index(reason: str) -> int:
    """The sample's place in its batch, as the letter's reason gave it (0 if it does not say)."""
    found = _SAMPLE_INDEX.match(reason)
    return int(found.group(1)) if found else 0


class Replay:
    """One replay run over the dead letters, into ``store``, under the current settings and asset model."""

    def __init__(self, settings: Settings, store: Store, assets: AssetModel, dead_letters: DeadLetterStore):
        self.settings = settings
        self.store = store
        self.assets = assets
        self.dead_letters = dead_letters
        self._limits = settings.ingest.wire_limits()
        self._prefix = settings.uplink.topic_prefix

    async def run(self, where: LetterFilter, replayed_at: datetime, *, dry_run: bool = False) -> ReplayReport:
        """Replay the waiting letters ``where`` selects, oldest first; ``replayed_at`` marks the stored ones.

        ``dry_run``: check every letter as a replay would and report the outcome, writing nothing to
        the store or the dead letters. What the store itself would refuse is known only as far as
        line protocol goes (a point InfluxDB's format cannot carry); the server's own refusals (a
        field type conflict) show only in a real replay.
        """
        report = ReplayReport()
        # Letters this run splits off come after the last one now; they are not replayed again in it.
        newest = await self.dead_letters.list(limit=1)
        through = newest[0].id if newest and newest[0].id is not None else 0
        after = 0
        while page := await self.dead_letters.waiting(where, after_id=after, through_id=through, limit=PAGE):
            checked = [self._check(letter) for letter in page]
            points = [p for c in checked for p in c.points]
            if dry_run:
                report.points_written += self._would_write(points)
            else:
                report.points_written += await self._write(points)
                await self.dead_letters.settle([c.settled() for c in checked], replayed_at)
            for c in checked:
                report.letters += 1
                report.split += len(c.split)
                report.reasons.update(d.reason for d in c.split)
                if c.reason is None:
                    report.stored += 1
                else:
                    report.refused += 1
                    report.reasons[c.reason] += 1
            assert page[-1].id is not None
            after = page[-1].id
        return report

    def _check(self, letter: DeadLetter) -> _Checked:
        checked = _Checked(letter, seq=letter.seq)
        edge = checked.edge = edge_of(letter.topic, self._prefix)
        if edge is None:
            checked.reason = not_an_uplink_topic(letter.topic, self._prefix)
        elif letter.kind is LetterKind.SAMPLE:
            self._check_sample(checked, edge)
        else:
            self._check_message(checked, edge)
        return checked

    def _check_sample(self, checked: _Checked, edge: str) -> None:
        letter = checked.letter
        index = _index(letter.reason)
        try:
            sample = decode_sample(letter.payload, index=index, limits=self._limits, now=letter.received_at)
        except WireFormatError as exc:
            checked.reason = exc.reason
            return
        admitted = admit_sample(sample, index, edge, self.assets)
        if isinstance(admitted, Refused):
            checked.reason = admitted.reason
        else:
            checked.points.append(_Point(admitted, sample, checked))

    def _check_message(self, checked: _Checked, edge: str) -> None:
        letter = checked.letter
        try:
            batch = decode_batch(letter.payload, limits=self._limits, now=letter.received_at)
        except WireFormatError as exc:
            checked.reason = exc.reason
            return
        if (other := names_another_edge(batch.edge, edge)) is not None:
            checked.reason = other
            return
        checked.seq = batch.seq
        for rejected in batch.rejected:
            checked.split_off(rejected.reason, rejected.payload)
        for index, sample in zip(_accepted_indices(batch), batch.samples, strict=True):
            admitted = admit_sample(sample, index, edge, self.assets)
            if isinstance(admitted, Refused):
                checked.split_off(admitted.reason, _sample_payload(sample))
            else:
                checked.points.append(_Point(admitted, sample, checked))

    async def _write(self, points: Sequence[_Point]) -> int:
        """Write in batches of ``ingest.batch_max_points``; a point the store refuses is isolated (as
        ingest's writer does) and its letter keeps the store's reason. Returns the points written."""
        size = self.settings.ingest.batch_max_points
        parts = [list(points[i : i + size]) for i in reversed(range(0, len(points), size))]
        written = 0
        while parts:
            part = parts.pop()
            try:
                await self.store.write([p.point for p in part])
            except StoreRejected as exc:
                if len(part) > 1:
                    middle = len(part) // 2
                    parts.extend((part[middle:], part[:middle]))
                else:
                    _store_rejected(part[0], f"store rejected: {exc}")
                continue
            written += len(part)
        return written

    def _would_write(self, points: Sequence[_Point]) -> int:
        """``_write`` without writing: the points line protocol cannot carry are refused as the store would."""
        if not isinstance(self.store, LineProtocolWriter):
            return len(points)
        written = 0
        for point in points:
            try:
                encode_point(point.point)
            except StoreRejected as exc:
                _store_rejected(point, f"store rejected: {exc}")
            else:
                written += 1
        return written


def _store_rejected(refused: _Point, reason: str) -> None:
    checked = refused.letter
    if checked.letter.kind is LetterKind.SAMPLE:
        checked.reason = reason
    else:
        checked.split_off(reason, _sample_payload(refused.sample))


def _accepted_indices(batch: DecodedBatch) -> list[int]:
    rejected = {r.index for r in batch.rejected}
    return [i for i in range(len(batch.samples) + len(batch.rejected)) if i not in rejected]


def _sample_payload(sample: Sample) -> bytes:
    return json.dumps(sample_to_json(sample)).encode()
