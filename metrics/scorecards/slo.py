"""Service level objectives as governed in the dbt project: a metric's `meta.slo`.

    slo: {direction: higher_is_better, target: 0.99, warn: 0.985}
    slo: {direction: lower_is_better, target: 2, warn: 3, per_days: 7,
          by_severity: {sev1: {target: 0, warn: 0}}}

`target` is the level that is fine, `warn` the level past which the SLO is breached; values
between the two warn. `per_days` marks thresholds of a count-like metric written for that many
days: they scale with the period's length. `by_<slice>` overrides target/warn per slice value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from metrics.errors import InternalError


class Direction(enum.Enum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    BREACH = "breach"
    NO_DATA = "no_data"
    NO_SLO = "no_slo"


@dataclass(frozen=True)
class Thresholds:
    target: float
    warn: float


@dataclass(frozen=True)
class Slo:
    direction: Direction
    default: Thresholds
    per_days: float | None = None
    by_slice: dict[str, dict[str, Thresholds]] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_meta(cls, metric: str, meta: dict[str, Any]) -> Slo | None:
        """The SLO in a metric's meta, or None when it has none.

        >>> Slo.from_meta("x", {"slo": {"direction": "lower_is_better", "target": 2, "warn": 3}}).default
        Thresholds(target=2.0, warn=3.0)
        """
        raw = meta.get("slo")
        if raw is None:
            return None
        try:
            direction = Direction(raw.get("direction", "higher_is_better"))
            default = Thresholds(float(raw["target"]), float(raw["warn"]))
            by_slice = {
                key[len("by_") :]: {str(v): Thresholds(float(t["target"]), float(t["warn"])) for v, t in values.items()}
                for key, values in raw.items()
                if key.startswith("by_")
            }
            per_days = float(raw["per_days"]) if raw.get("per_days") is not None else None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InternalError(
                f"metric {metric!r} has a malformed meta.slo ({exc!r}); it needs direction "
                "(higher_is_better | lower_is_better), target and warn."
            ) from None
        if (
            direction is Direction.HIGHER_IS_BETTER
            and default.warn > default.target
            or (direction is Direction.LOWER_IS_BETTER and default.warn < default.target)
        ):
            raise InternalError(f"metric {metric!r}: meta.slo warn must lie past target in the worse direction.")
        return cls(direction, default, per_days, by_slice)

    def thresholds(
        self, period_days: float, slice_name: str | None = None, slice_value: str | None = None
    ) -> Thresholds:
        """Target and warn for a period of `period_days` days (and a slice value).

        >>> slo = Slo(Direction.LOWER_IS_BETTER, Thresholds(2, 3), per_days=7)
        >>> slo.thresholds(14)
        Thresholds(target=4.0, warn=6.0)
        """
        base = self.default
        if slice_name is not None and slice_value is not None:
            base = self.by_slice.get(slice_name, {}).get(str(slice_value), base)
        scale = period_days / self.per_days if self.per_days else 1.0
        return Thresholds(base.target * scale, base.warn * scale)

    def status(
        self, value: float | None, period_days: float, slice_name: str | None = None, slice_value: str | None = None
    ) -> Status:
        """ok up to the target, warn up to the warn level, breach past it.

        >>> slo = Slo(Direction.HIGHER_IS_BETTER, Thresholds(0.99, 0.985))
        >>> [slo.status(v, 7).value for v in (0.995, 0.99, 0.987, 0.98, None)]
        ['ok', 'ok', 'warn', 'breach', 'no_data']
        """
        if value is None:
            return Status.NO_DATA
        t = self.thresholds(period_days, slice_name, slice_value)
        if self.direction is Direction.HIGHER_IS_BETTER:
            return Status.OK if value >= t.target else Status.WARN if value >= t.warn else Status.BREACH
        return Status.OK if value <= t.target else Status.WARN if value <= t.warn else Status.BREACH

    def better(self, new: float | None, old: float | None) -> bool | None:
        """Whether `new` is better than `old` in this SLO's direction (None if either is missing)."""
        if new is None or old is None or new == old:
            return None if new is None or old is None else False
        return new > old if self.direction is Direction.HIGHER_IS_BETTER else new < old
