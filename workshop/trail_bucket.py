"""A simulated organization trail bucket: ListObjectsV2 answered from the trail's layout, no key held.

`AWSLogs/o-ID/ACCOUNT/CloudTrail[-Digest]/REGION/YYYY/MM/DD/` with so many log files and digests a day;
the keys are generated in S3's order as a listing walks them, so a bucket of a billion keys costs no
memory. Prefix, Delimiter, ContinuationToken, StartAfter and MaxKeys behave as S3's do; every call is
counted, and may wait (`latency`) as a real one does. For the backfill benchmark and tests.
"""

from __future__ import annotations

import bisect
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

LOG = "CloudTrail"
DIGEST = "CloudTrail-Digest"


@dataclass
class TrailBucket:
    name: str = "org-trail-bucket"
    organization: str = "o-abcdefghij"
    accounts: int = 100
    regions: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
    first_day: date = date(2024, 1, 1)
    days: int = 100
    logs_per_day: int = 25
    digests_per_day: int = 24
    log_size: int = 2_000
    digest_size: int = 1_500
    latency: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    _cache: dict[tuple[str, tuple[str, ...]], list[str]] = field(default_factory=dict, repr=False)

    @property
    def prefix(self) -> str:
        return f"AWSLogs/{self.organization}/"

    @property
    def account_ids(self) -> list[str]:
        return list(self._account_ids)

    @functools.cached_property
    def _calendar(self) -> dict[str, dict[str, list[str]]]:
        """year -> month -> days of the bucket's days, as folder names."""
        calendar: dict[str, dict[str, list[str]]] = {}
        for i in range(self.days):
            day = self.first_day + timedelta(days=i)
            calendar.setdefault(f"{day.year:04d}", {}).setdefault(f"{day.month:02d}", []).append(f"{day.day:02d}")
        return calendar

    @functools.cached_property
    def _account_ids(self) -> list[str]:
        return [f"{100000000000 + i * 7919:012d}" for i in range(self.accounts)]

    @property
    def key_count(self) -> int:
        return self.accounts * len(self.regions) * self.days * (self.logs_per_day + self.digests_per_day)

    @property
    def log_count(self) -> int:
        return self.accounts * len(self.regions) * self.days * self.logs_per_day

    @property
    def digest_count(self) -> int:
        return self.accounts * len(self.regions) * self.days * self.digests_per_day

    # -- the layout, as a tree walked in key order --------------------------------------------------------

    def _children(self, path: tuple[str, ...]) -> list[str] | None:
        """The sorted names under a folder path (relative to the bucket), or None at a day (files next)."""
        depth = len(path)
        if depth == 0:
            return ["AWSLogs"]
        if depth == 1:
            return [self.organization]
        if depth == 2:
            return self._account_ids
        if depth == 3:
            return [LOG, DIGEST]
        if depth == 4:
            return sorted(self.regions)
        if depth == 5:
            return sorted(self._calendar)
        if depth == 6:
            return sorted(self._calendar.get(path[5], {}))
        if depth == 7:
            return self._calendar.get(path[5], {}).get(path[6], [])
        return None

    def _files(self, path: tuple[str, ...]) -> list[tuple[str, int]]:
        account, kind, region, year, month, day = path[2:8]
        stamp = f"{year}{month}{day}"
        if kind == LOG:
            return [(f"{account}_CloudTrail_{region}_{stamp}T{i * 1440 // self.logs_per_day // 60:02d}"
                     f"{i * 1440 // self.logs_per_day % 60:02d}Z_{i:04x}abcdEFGH.json.gz", self.log_size)
                    for i in range(self.logs_per_day)]
        return [(f"{account}_CloudTrail-Digest_{region}_org-trail_us-east-1_{stamp}T{h:02d}0000Z.json.gz",
                 self.digest_size) for h in range(self.digests_per_day)]

    def _walk(self, path: tuple[str, ...], prefix: str, after: str) -> Iterator[tuple[str, int]]:
        """Every (key, size) under path that starts with prefix and sorts after `after`, in key order."""
        folder = "".join(f"{p}/" for p in path)
        names = self._children(path)
        if names is None:
            for name, size in self._files(path):
                key = folder + name
                if key.startswith(prefix) and key > after:
                    yield key, size
            return
        belows = self._folders(folder, tuple(names))
        start = max(bisect.bisect_left(belows, after) - 1, 0)  # the folders before it hold only keys <= after
        for below in belows[start:]:
            if not (below.startswith(prefix) or prefix.startswith(below)):
                if below > prefix:
                    return
                continue
            if below < after and not after.startswith(below):
                continue
            yield from self._walk((*path, below[len(folder):-1]), prefix, after)

    def _folders(self, folder: str, names: tuple[str, ...]) -> list[str]:
        """The child folders' full prefixes, in S3's order ("CloudTrail-Digest/" before "CloudTrail/")."""
        found = self._cache.get((folder, names))
        if found is None:
            found = self._cache[(folder, names)] = sorted(f"{folder}{name}/" for name in names)
        return found

    # -- the S3 client's calls -----------------------------------------------------------------------------

    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", Delimiter: str = "",
                        ContinuationToken: str = "", StartAfter: str = "", MaxKeys: int = 1000,
                        **_: Any) -> dict[str, Any]:
        """One page, as S3 answers it (keys and common prefixes together, at most MaxKeys of them)."""
        self.calls["list_objects_v2"] = self.calls.get("list_objects_v2", 0) + 1
        if self.latency:
            time.sleep(self.latency)
        assert Bucket == self.name, Bucket
        after = max(ContinuationToken, StartAfter)
        contents: list[dict[str, Any]] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        walk = self._walk((), Prefix, after)
        while True:
            found = next(walk, None)
            if found is None:
                break
            if len(contents) + len(prefixes) == MaxKeys:
                truncated = True
                break
            key, size = found
            if Delimiter and Delimiter in key[len(Prefix):]:
                common = key[:key.index(Delimiter, len(Prefix)) + 1]
                prefixes.append(common)
                last = common + "\uffff"  # what follows sorts after everything under it
                walk = self._walk((), Prefix, last)  # so the walk starts again there, skipping that folder
                continue
            contents.append({"Key": key, "Size": size, "ETag": '"0"', "StorageClass": "STANDARD"})
            last = key
        response: dict[str, Any] = {"IsTruncated": truncated, "KeyCount": len(contents) + len(prefixes),
                                    "Prefix": Prefix, "MaxKeys": MaxKeys}
        if contents:
            response["Contents"] = contents
        if prefixes:
            response["CommonPrefixes"] = [{"Prefix": p} for p in prefixes]
        if truncated:
            response["NextContinuationToken"] = last
        return response

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_objects_v2", name
        return _Paginator(self)


@dataclass
class _Paginator:
    bucket: TrailBucket

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs.pop("PaginationConfig", None)
        token = ""
        while True:
            page = self.bucket.list_objects_v2(**kwargs, ContinuationToken=token)
            yield page
            if not page["IsTruncated"]:
                return
            token = page["NextContinuationToken"]
