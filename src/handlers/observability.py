"""Logger, Metrics and Tracer, created once for the function.

The Tracer is built on first use, not at import: its constructor imports the X-Ray SDK (about a third
of the handler's import time), which tests, the CLI and functions with tracing off never need. With
`Tracing: Active` the SDK is loaded by the first invocation instead of the init phase.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


class LazyTracer:
    """The parts of Powertools' Tracer the function uses, building the real one when first called."""

    @functools.cached_property
    def tracer(self) -> Tracer:
        return Tracer()

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """Tracer.capture_lambda_handler, applied on the first invocation."""
        traced: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            if not traced:
                traced.append(self.tracer.capture_lambda_handler(handler))
            return traced[0](event, context)

        return wrapper  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tracer, name)


tracer = LazyTracer()
