"""Which OpsWorks stories a sample bucket holds: two stacks and two OpsWorks CM servers per 300 log files,
and the documentation-shaped records once. To add a story, call it here."""

from __future__ import annotations

from collections.abc import Sequence

from workshop.sample_data.calls import Session
from workshop.sample_data.docs_examples import docs_examples
from workshop.sample_data.opsworks_cm import server
from workshop.sample_data.opsworks_stack import stack
from workshop.sample_data.records import RecordMaker


def opsworks_sessions(r: RecordMaker, accounts: Sequence[str], copies: int) -> list[Session]:
    """Every story's sessions, in order. The n-th copy (from 0) of the repeated stories has n appended to
    its names (nothing for the first) and its accounts moved on by n; ``at`` lists where each session
    starts, as fractions of the trail's window (one per session of the story)."""

    def account(n: int) -> str:
        return accounts[n % len(accounts)]

    sessions: list[Session] = []
    for n in range(copies):
        suffix = str(n) if n else ""
        sessions += stack(r, account(0 + n), "us-east-1", name=f"web-prod{suffix}", by="deploy-automation",
                          at=(0.02, 0.06, 0.10, 0.14, 0.30, 0.50, 0.70))
        sessions += stack(r, account(1 + n), "us-west-2", name=f"api-staging{suffix}", by="alice",
                          at=(0.20, 0.25, 0.35, 0.60, 0.78, 0.86, 0.95))
        sessions += server(r, account(0 + n), "us-east-1", name=f"chef-prod{suffix}", engine="ChefAutomate",
                           at=(0.0, 0.03, 0.06, 0.08, 0.11))
        sessions += server(r, account(1 + n), "eu-west-1", name=f"puppet-prod{suffix}", engine="Puppet",
                           at=(0.01, 0.04, 0.40, 0.55, 0.90))
    sessions += docs_examples(r, accounts[0], "us-west-2", at=(0.45, 0.05))
    return sessions
