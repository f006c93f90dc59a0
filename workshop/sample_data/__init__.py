"""The sample trail as plain Python: who calls, what they call, and the OpsWorks stories.

- ``opsworks_stack.py``: a stack's life (CreateStack .. DeleteStack) over seven sessions.
- ``opsworks_cm.py``: an OpsWorks CM server's life (CreateServer .. DeleteServer) over five sessions.
- ``docs_examples.py``: records shaped like the AWS docs' examples (older event versions).
- ``cast.py``: which of those stories a bucket holds, where and when.
- ``services.py``: other services' everyday calls (weighted), look-alikes that mention OpsWorks yet are
  other services' records, an EC2 RunInstances call, the Insights file's records.
- ``people.py``: each account's people and roles; ``trail.py``: regions, a key prefix, resource keys.
- ``calls.py``: a session of calls (``s.call(ACTION, request, response, who=..., ro=..., error=...)``);
  ``records.py``: how a call becomes a CloudTrail record, and the seeded draws (``r.uuid()``,
  ``r.secret()``, ``r.token(16, "hex")``, ``r.choice(...)`` ...).

To change a step, edit the call in its story: it is an ordinary function call with dicts for the request
and response. Every random value comes from one seeded :class:`~workshop.sample_data.records.RecordMaker`
in the order the code asks for it, so the same seed gives the same bytes; an edit changes the bytes
after it, and the tests and the demo count what the manifest (workshop.synthetic) says was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from random import Random

from workshop.sample_data.people import people_and_roles
from workshop.sample_data.records import RecordMaker


def new_maker(rng: Random, accounts: Sequence[str], start: datetime, days: int) -> RecordMaker:
    """A record maker for these accounts over ``days`` from ``start``, their people and roles drawn first."""
    maker = RecordMaker(rng, accounts, start, days)
    for account in maker.accounts:
        maker.actors[account] = people_and_roles(maker, account)
    return maker
