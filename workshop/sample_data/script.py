"""Fills the sample data's templates and runs its stories: the YAML files say what, this says how.

The template language and the steps are described in :mod:`workshop.sample_data`. One
:class:`Script` serves one generated bucket or file; every random draw goes through its
:class:`~workshop.sample_data.records.RecordMaker`, in the order the templates are written.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workshop.sample_data import load
from workshop.sample_data.records import AGENTS, Actor, Json, RecordMaker, fmt, java_date

Clock = Callable[[], datetime]
Generator = Callable[["Frame", list[str]], Any]

#: ``${...}``, possibly holding inner ``${...}`` one level deep.
_PLACEHOLDER = re.compile(r"\$\{((?:[^{}]|\$\{[^{}]*\})*)\}")
_DIRECTIVES = ("$json", "$merge", "$fill", "$maybe", "$actor")


@dataclass
class Session:
    """Calls made close together, so that they land in one log file; look-alikes are other services'."""

    account: str
    region: str
    records: list[Json] = field(default_factory=list)
    lookalikes: list[Json] = field(default_factory=list)


@dataclass
class Frame:
    """Where steps run: their variables, their clock, and where their records go."""

    vars: ChainMap[str, Any]
    clock: Clock
    records: list[Json]
    lookalikes: list[Json]

    def child(self) -> Frame:
        """A frame whose new variables are its own, seeing this one's."""
        return dataclasses.replace(self, vars=self.vars.new_child())


def _no_clock() -> datetime:
    raise ValueError("${tick} outside a session")


def _merge(base: Any, update: Any) -> Any:
    """``base`` with ``update``'s keys set (maps merged key by key, anything else replaced); a new value."""
    if not (isinstance(base, dict) and isinstance(update, dict)):
        return update
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


class Script:
    """The sample data's stories, noise and look-alikes, played with one seeded :class:`RecordMaker`."""

    def __init__(self, maker: RecordMaker) -> None:
        self.maker = maker
        stories, services = load("stories"), load("services")
        self.stories: Mapping[str, Any] = stories["stories"]
        self.procedures: Mapping[str, Any] = {**services["procedures"], **stories["procedures"]}
        self.generators = self._generators()
        actors = load("actors")
        for account in maker.accounts:
            frame = self.frame({"account": account})
            self._let(actors["per_account"], frame)
            maker.actors[account] = [self._actor(entry, frame) for entry in actors["people_and_roles"]]

    # what the sample data's callers use -----------------------------------------------------------
    def story(self, name: str, account: str, region: str, params: Mapping[str, Any]) -> list[Session]:
        """One story of ``stories.yaml``: its sessions, each on its own clock at ``params["at"][i]``."""
        story = self.stories[name]
        frame = self.frame({**params, **story.get("tables", {}), "account": account, "region": region})
        self._let(story.get("let", {}), frame)
        sessions = []
        for i, steps in enumerate(story["sessions"]):
            s = Session(account, region)
            clock = self.clock(params["at"][i])
            # one set of variables for the whole story: a later session uses what an earlier one named
            self.run(steps, dataclasses.replace(frame, clock=clock, records=s.records, lookalikes=s.lookalikes))
            sessions.append(s)
        return sessions

    def records(
        self, procedure: str, account: str, region: str, at: datetime, which: int | None = None
    ) -> list[Json]:
        """The records a procedure of ``services.yaml`` writes for calls at ``at``."""
        frame = self.frame({"account": account, "region": region, "at": at}, clock=lambda: at)
        self.run([{"do": procedure, "which": which}], frame)
        return frame.records

    def one(self, procedure: str, account: str, region: str, at: datetime, which: int | None = None) -> Json:
        """The one record a procedure writes (``noise``, ``lookalike``: a family's kind ``which``, or one
        picked at random)."""
        (record,) = self.records(procedure, account, region, at, which)
        return record

    def clock(self, frac: float) -> Clock:
        """A session clock: starts at ``frac`` of the window, each call advances 5-90 seconds."""
        r = self.maker
        span = (r.end - r.start).total_seconds()
        t = [r.start + timedelta(seconds=int(span * frac) + r.rng.randint(0, 1800))]

        def tick() -> datetime:
            t[0] += timedelta(seconds=r.rng.randint(5, 90))
            return t[0]

        return tick

    # steps ----------------------------------------------------------------------------------------
    def run(self, steps: Sequence[Json], frame: Frame) -> None:
        """Run ``let``, ``call``, ``record``, ``each`` and ``do`` steps in order."""
        for step in steps:
            if "let" in step:
                self._let(step["let"], frame)
            elif "call" in step:
                frame.records.append(self._call(step, frame))
            elif "record" in step:
                frame.records.append(self.fill(step["record"], frame))
            elif "each" in step:
                columns = {name: self.fill(values, frame) for name, values in step["each"].items()}
                for row in zip(*columns.values(), strict=True):
                    inner = frame.child()
                    inner.vars.update(zip(columns, row, strict=True))
                    self.run(step["steps"], inner)
            elif "do" in step:
                self._do(step, frame)
            else:
                raise ValueError(f"unknown step {sorted(step)}")

    def _let(self, names: Mapping[str, Any], frame: Frame) -> None:
        for name, template in names.items():
            if name in self.generators:
                raise ValueError(f"variable {name!r} would hide the generator ${{{name}}}")
            frame.vars[name] = self.fill(template, frame)

    def _call(self, step: Json, frame: Frame) -> Json:
        """One API call as CloudTrail records it; its arguments are filled before the clock ticks."""
        args = {k: self.fill(v, frame) for k, v in step.items() if k not in ("call", "drop")}
        who = args.pop("who", frame.vars.get("main"))
        actor = who if isinstance(who, Actor) else self.maker.actor(frame.vars["account"], who)
        at = args.pop("at") if "at" in args else frame.clock()
        error = args.pop("error", None)
        record = self.maker.record(
            actor,
            at,
            args.pop("source", frame.vars.get("source")),
            step["call"],
            args.pop("region", frame.vars["region"]),
            args.pop("request", None),
            args.pop("response", None),
            read_only=args.pop("ro", False),
            error=(error[0], error[1]) if error else None,
            **args,
        )
        for path in step.get("drop", ()):
            *parents, last = path.split(".")
            node = record
            for key in parents:
                node = node[key]
            node.pop(last, None)
        return record

    def _do(self, step: Json, frame: Frame) -> None:
        """A procedure with its ``with`` values (``at`` stops its clock there); a family picks a kind."""
        inner = frame.child()
        self._let(step.get("with", {}), inner)
        if "at" in inner.vars.maps[0]:
            at = inner.vars["at"]
            inner.clock = lambda: at
        if step.get("lookalike"):
            inner.records = frame.lookalikes
        procedure = self.procedures[step["do"]]
        if isinstance(procedure, list):
            self.run(procedure, inner)
            return
        kinds, which = procedure["kinds"], step.get("which")
        if which is not None:
            kind = kinds[which % len(kinds)]
        elif all("weight" in k for k in kinds):
            kind = self.maker.rng.choices(kinds, weights=[k["weight"] for k in kinds])[0]
        else:
            kind = kinds[self.maker.rng.randrange(len(kinds))]
        self._let(procedure.get("let", {}), inner)
        self.run(kind["steps"], inner)

    # templates ------------------------------------------------------------------------------------
    def fill(self, node: Any, frame: Frame) -> Any:
        """The value a template stands for, drawing in the order the template is written."""
        if isinstance(node, str):
            return self._text(node, frame)
        if isinstance(node, list):
            return [self.fill(item, frame) for item in node]
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)) in _DIRECTIVES:
                ((directive, arg),) = node.items()
                return self._directive(directive, arg, frame)
            return {str(self._text(k, frame)): self.fill(v, frame) for k, v in node.items()}
        return node

    def _text(self, text: str, frame: Frame) -> Any:
        if "${" not in text:
            return text
        whole = _PLACEHOLDER.fullmatch(text)
        if whole:
            return self._value(whole.group(1), frame)
        return _PLACEHOLDER.sub(lambda m: str(self._value(m.group(1), frame)), text)

    def _value(self, expr: str, frame: Frame) -> Any:
        if "${" in expr:
            expr = _PLACEHOLDER.sub(lambda m: str(self._value(m.group(1), frame)), expr)
        head, *args = expr.split()
        generator = self.generators.get(head)
        if generator is not None:
            return generator(frame, args)
        if args:
            raise ValueError(f"unknown generator {head!r} in ${{{expr}}}")
        return self._lookup(head, frame)

    @staticmethod
    def _lookup(path: str, frame: Frame) -> Any:
        name, *rest = path.split(".")
        value = frame.vars[name]
        for key in rest:
            if isinstance(value, list):
                value = value[int(key)]
            elif isinstance(value, dict):
                value = value[key]
            else:
                value = getattr(value, key)
        return value

    def _directive(self, directive: str, arg: Any, frame: Frame) -> Any:
        if directive == "$json":
            return json.dumps(self.fill(arg, frame))
        if directive == "$merge":
            base, update = arg
            return _merge(self.fill(base, frame), self.fill(update, frame))
        if directive == "$fill":
            return self.fill(self.fill(arg, frame), frame)
        if directive == "$maybe":
            return self.fill(arg["then"] if self.maker.rng.random() < arg["chance"] else arg["else"], frame)
        if directive == "$actor":
            changes = {k: self.fill(v, frame) for k, v in arg.items()}
            base = changes.pop("from")
            return dataclasses.replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})
        raise ValueError(f"unknown directive {directive}")

    def _time(self, frame: Frame, args: list[str]) -> datetime:
        """``VAR [SECONDS]``: a time variable, moved by SECONDS."""
        at: datetime = self._lookup(args[0], frame)
        return at + timedelta(seconds=int(args[1])) if len(args) > 1 else at

    def _generators(self) -> dict[str, Generator]:
        r, rng = self.maker, self.maker.rng

        def integer(_: Frame, a: list[str]) -> int | str:
            n = rng.randint(int(a[0]), int(a[1]))
            return f"{n:0{a[2]}d}" if len(a) > 2 else n

        def someone(f: Frame, a: list[str]) -> Actor:
            """``console``, ``machine`` or kinds (``IAMUser Root``): one of the account's people and roles."""
            people = r.actors[f.vars["account"]]
            if a == ["console"]:
                return rng.choice([p for p in people if p.console])
            if a == ["machine"]:
                return rng.choice([p for p in people if not p.console])
            return rng.choice([p for p in people if p.kind in a])

        return {
            "uuid": lambda f, a: r.uuid(),
            "uuid1": lambda f, a: str(uuid.UUID(int=rng.getrandbits(128), version=1)),
            "secret": lambda f, a: r.secret(),
            "token": lambda f, a: r.token(int(a[0]), *a[1:]),
            "int": integer,
            "choice": lambda f, a: rng.choice(a),
            "chance": lambda f, a: rng.random() < float(a[0]),
            "ip": lambda f, a: r.ip(),
            "docs_id": lambda f, a: r.docs_style_id(),
            "tick": lambda f, a: f.clock(),
            "time": lambda f, a: fmt(self._time(f, a)),
            "java_date": lambda f, a: java_date(self._time(f, a)),
            "day": lambda f, a: fmt(self._time(f, a))[:10],
            "stamp": lambda f, a: f"{self._time(f, a):%Y%m%d%H%M%S}",
            "ms": lambda f, a: int(self._time(f, a).timestamp() * 1000),
            "actor": lambda f, a: r.actor(f.vars["account"], a[0]),
            "someone": someone,
            "service": lambda f, a: r.service(f.vars["account"], a[0]),
            "service_role": lambda f, a: r.service_role(f.vars["account"], a[0], a[1]),
        }

    def frame(self, variables: Mapping[str, Any], clock: Clock = _no_clock) -> Frame:
        """A frame holding ``variables`` (at least ``account``), with its own record lists."""
        return Frame(ChainMap(dict(variables)), clock, [], [])

    def _actor(self, entry: Mapping[str, Any], frame: Frame) -> Actor:
        fields = {k: self.fill(v, frame) for k, v in entry.items()}
        fields["agents"] = tuple(agent for group in fields["agents"] for agent in AGENTS[group])
        fields["ips"] = tuple(fields["ips"])
        return Actor(account=frame.vars["account"], **fields)
