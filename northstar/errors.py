"""The build's exceptions. Only `northstar build` (and the commands that run it) raises them;
the engine and the interfaces serve the warehouse a build published and never see them."""

from __future__ import annotations

from metrics.errors import MetricsError


class BuildFailed(MetricsError):
    """A build stopped; the served warehouse is unchanged."""

    code = "build_failed"


class LandingContractViolation(BuildFailed):
    """A landing file breaks the landing contract (missing table/column, uncastable value)."""

    code = "landing_contract_violation"
