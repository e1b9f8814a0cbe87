"""What one session may store of its candidate's activity: events, snapshots, bytes.

Every accepted byte counts, so a session's share of the database (and of the write
queue in memory before it) never passes `bytes`, whatever the candidate sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.errors import IBError

SNAPSHOT = "activity.snapshot"


@dataclass(frozen=True)
class Quota:
    events: int  # activity events of every kind
    snapshots: int  # activity.snapshot events
    bytes: int  # their payloads, as stored (JSON)


@dataclass
class Usage:
    events: int = 0
    snapshots: int = 0
    bytes: int = 0
    reported: set[str] = field(default_factory=set)  # limits already announced by an event

    def add(self, type_: str, size: int) -> None:
        self.events += 1
        self.snapshots += type_ == SNAPSHOT
        self.bytes += size

    def refusal(self, quota: Quota, type_: str | None, size: int) -> tuple[str, IBError] | None:
        """(which limit, the error) if recording this event would pass a limit. Before the
        body is read, `type_` is None and `size` the body's announced length, which a
        well-formed event's payload does not exceed."""
        if self.events >= quota.events:
            return "events", IBError("quota_exceeded", f"This session has recorded its "
                                     f"{quota.events} activity events; no more are kept.")
        if type_ == SNAPSHOT and self.snapshots >= quota.snapshots:
            return "snapshots", IBError("quota_exceeded", f"This session has recorded its "
                                        f"{quota.snapshots} notebook snapshots; no more are "
                                        "kept (submitting still works).")
        if self.bytes + size > quota.bytes:
            what = "event" if type_ else "request"
            return "bytes", IBError("quota_exceeded", f"This {what} ({size} bytes) would take "
                                    f"the session's activity past its {quota.bytes} bytes; "
                                    f"{max(0, quota.bytes - self.bytes)} are left.")
        return None
