"""Sessions: API calls made close together, recorded as CloudTrail records them.

A story (``opsworks_stack.py``, ``opsworks_cm.py``) is a sequence of sessions; each session lands in
one log file. ``session.call("CreateLayer", request, response, who="alice")`` appends the record
CloudTrail would write for that call, at the session clock's next tick (5-90 seconds after the one
before). Other services' procedures (``services.py``) use a session whose clock stands still.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workshop.sample_data.records import Actor, Json, RecordMaker


@dataclass
class Session:
    """Calls made close together (so that they land in one log file); ``lookalikes`` are records of other
    services that go with them (OpsWorks starting an EC2 instance) and that no OpsWorks query may return."""

    maker: RecordMaker
    account: str
    region: str
    clock: Callable[[], datetime]
    source: str = ""
    """The event source of a call that names none."""
    caller: str | Actor = ""
    """Who makes a call that names no one (a person's name, or an actor)."""
    records: list[Json] = field(default_factory=list)
    lookalikes: list[Json] = field(default_factory=list)

    @classmethod
    def at(cls, maker: RecordMaker, account: str, region: str, when: datetime) -> Session:
        """A session whose every call happens at ``when``."""
        return cls(maker, account, region, clock=lambda: when)

    def tick(self) -> datetime:
        """The clock's next time (and the clock moves on)."""
        return self.clock()

    def call(
        self,
        name: str,
        request: Json | None = None,
        response: Json | None = None,
        *,
        who: str | Actor | None = None,
        source: str | None = None,
        region: str | None = None,
        ro: bool = False,
        error: tuple[str, str] | None = None,
        at: datetime | None = None,
        event_type: str = "AwsApiCall",
        additional: Json | None = None,
        resources: list[Json] | None = None,
        request_id: str | None = None,
        shared: bool = False,
        vpce: bool = False,
    ) -> Json:
        """Record one call: by ``who`` (default the session's caller), read-only if ``ro``, failed with
        ``error`` = (code, message), at the next tick unless ``at`` says when. Returns the record."""
        caller = self.caller if who is None else who
        actor = caller if isinstance(caller, Actor) else self.maker.actor(self.account, caller)
        record = self.maker.record(
            actor,
            self.clock() if at is None else at,
            source or self.source,
            name,
            region or self.region,
            request,
            response,
            read_only=ro,
            error=error,
            event_type=event_type,
            additional=additional,
            resources=resources,
            request_id=request_id,
            shared=shared,
            vpce=vpce,
        )
        self.records.append(record)
        return record

    def add(self, record: Json) -> Json:
        """Append a record written out whole (shaped like a documentation example, say)."""
        self.records.append(record)
        return record


@dataclass
class Story:
    """One story's sessions, each on its own clock; calls name ``caller`` and ``source`` unless they say."""

    maker: RecordMaker
    account: str
    region: str
    source: str = ""
    caller: str | Actor = ""
    sessions: list[Session] = field(default_factory=list)

    def session(self, when: float) -> Session:
        """A new session starting at fraction ``when`` of the window (plus up to 30 minutes)."""
        r = self.maker
        span = (r.end - r.start).total_seconds()
        now = [r.start + timedelta(seconds=int(span * when) + r.rng.randint(0, 1800))]

        def tick() -> datetime:
            now[0] += timedelta(seconds=r.rng.randint(5, 90))
            return now[0]

        session = Session(r, self.account, self.region, tick, self.source, self.caller)
        self.sessions.append(session)
        return session
