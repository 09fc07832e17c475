"""Row-level policies: filters bound to a caller that every answer it gets must respect.

`RestrictedEngine` wraps a `MetricsEngine` for one caller. Each metric query gets the policy's
filters added with AND, so no filter in a request can widen it. A metric that cannot be
filtered by a policy field (incidents have no region) is refused rather than answered
unrestricted, and everything that is not a metric query (experiment readouts, mart reads,
raw SQL) is refused for a restricted caller: denial is the default, access is what has been
shown to respect the policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from metrics.errors import AmbiguousDimension, UnknownDimension, UserError
from metrics.query.request import Filter, MetricQuery


class PolicyDenied(UserError):
    """The caller's row-level policy does not allow this request."""

    code = "forbidden_by_policy"


@dataclass(frozen=True)
class RowPolicy:
    filters: tuple[Filter, ...]
    description: str

    def __bool__(self) -> bool:
        return bool(self.filters)


# What a restricted caller may use unchanged: definitions, never data.
_DEFINITIONS = frozenset({"catalog", "metric", "metric_names", "dimensions", "saved_queries", "saved_query",
                          "build", "manifest", "graph"})


class RestrictedEngine:
    """A `MetricsEngine` seen through a row-level policy."""

    def __init__(self, engine, policy: RowPolicy) -> None:
        self._engine = engine
        self.policy = policy

    def restrict(self, query: MetricQuery) -> MetricQuery:
        return dataclasses.replace(query, where=query.where + self.policy.filters)

    def _guarded(self, method, query: MetricQuery):
        try:
            return method(self.restrict(query))
        except (UnknownDimension, AmbiguousDimension) as exc:
            field = exc.details.get("field")
            if field in {f.field for f in self.policy.filters}:
                raise PolicyDenied(
                    f"this token may only read rows where {self.policy.description}, and "
                    f"{', '.join(query.metrics)} cannot be filtered by {field!r}; ask for metrics that can.",
                    field=field) from None
            raise

    def plan(self, query: MetricQuery):
        return self._guarded(self._engine.plan, query)

    def compile(self, query: MetricQuery):
        return self._guarded(self._engine.compile, query)

    def query(self, query: MetricQuery):
        return self._guarded(self._engine.query, query)

    @property
    def experiments(self):
        """Experiments counted over the users the policy allows: its filters must be attributes
        of the user (region, plan, account...), since a readout counts users, not rows."""
        try:
            return self._engine.experiments.restricted(self.policy.filters)
        except (UnknownDimension, AmbiguousDimension) as exc:
            raise PolicyDenied(
                f"this token may only read rows where {self.policy.description}, and experiment readouts "
                f"count users, which cannot be filtered by {exc.details.get('field')!r}.",
                field=exc.details.get("field")) from None

    def __getattr__(self, name: str):
        if name in _DEFINITIONS:
            return getattr(self._engine, name)
        raise PolicyDenied(f"this token may only read rows where {self.policy.description}; "
                           f"'{name}' cannot be restricted that way, so it is not available to this token; "
                           "metric queries are.")
