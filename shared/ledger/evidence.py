"""Every measurement is evidence: `<prefix>Evidence` keeps each analysis round of each
environment of a release, one row per round (PartitionKey the release, RowKey
`<environment>:<round>`), written by the activity that measured it.

A round written again (a retried activity) replaces itself. Rows hold names, numbers and
one-line summaries, never a secret or a query's answer beyond its number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from shared.deploy.evidence import Evidence, Measurement

from .records import table_key, utc
from .side_tables import SideTable

MAX_MEASUREMENTS_CHARS = 30_000  # a Table string property holds 32 K characters


@dataclass(frozen=True)
class RecordedRound:
    """One analysis round as the ledger holds it."""

    environment: str
    round: int
    at: datetime
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "round": self.round,
                "at": self.at.isoformat(), "verdict": self.evidence.verdict.value,
                "summary": self.evidence.summary,
                "measurements": [_compact(m) for m in self.evidence.measurements]}


class EvidenceBook(SideTable):
    """Analysis rounds next to a ledger."""

    name = "Evidence"

    def record(self, release_id: str, environment: str, number: int, at: datetime,
               evidence: Evidence) -> None:
        """Keep round `number` of `environment` (again: the same row)."""
        measurements = json.dumps([_compact(m) for m in evidence.measurements])
        if len(measurements) > MAX_MEASUREMENTS_CHARS:
            measurements = json.dumps([{**_compact(m), "summary": m.summary[:200]}
                                       for m in evidence.measurements])[:MAX_MEASUREMENTS_CHARS]
        entity = {"PartitionKey": table_key(release_id, "release id"),
                  "RowKey": f"{table_key(environment, 'environment')}:{number:05d}",
                  "Environment": environment, "Round": number, "At": utc(at),
                  "Kind": evidence.kind, "Verdict": evidence.verdict.value,
                  "Summary": evidence.summary[:1000], "Measurements": measurements}
        self._call(f"record analysis round {number} of {release_id}/{environment}",
                   lambda table: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def rounds(self, release_id: str) -> list[RecordedRound]:
        """Every round recorded for the release, by environment and round."""
        key = table_key(release_id, "release id")

        def read(table: TableClient) -> list[dict[str, Any]]:
            return list(table.query_entities("PartitionKey eq @key",
                                             parameters={"key": key}))

        found = []
        for entity in self._call(f"read the analysis rounds of {release_id}", read):
            try:
                measurements = tuple(Measurement.from_dict(m)
                                     for m in json.loads(entity.get("Measurements") or "[]"))
                evidence = Evidence.of(str(entity.get("Kind") or "analysis"), measurements)
            except (ValueError, KeyError, TypeError):
                continue  # a row cut at the size limit: skipped rather than misread
            found.append(RecordedRound(str(entity["Environment"]), int(entity["Round"]),
                                       utc(entity["At"]), evidence))
        return sorted(found, key=lambda r: (r.at, r.environment, r.round))


def _compact(measurement: Measurement) -> dict[str, Any]:
    """What a round keeps of a measurement: name, verdict, summary, number."""
    return {"name": measurement.name, "verdict": measurement.verdict.value,
            "summary": measurement.summary, "value": measurement.value}
