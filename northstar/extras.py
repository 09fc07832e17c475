"""Optional extras (`pip install -e '.[postgres]'`, `'.[spark]'`): which modules each brings,
and a one-line error naming the extra when a setting needs one that is not installed."""

from __future__ import annotations

import importlib

from metrics.errors import MetricsError

# extra -> the modules it installs that northstar imports (the first missing one is named).
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("psycopg", "psycopg_pool", "dbt.adapters.postgres"),
    "spark": ("pyspark", "dbt.adapters.spark"),
    "metricflow": ("metricflow",),
}


class MissingExtra(MetricsError):
    """A setting needs an optional extra that is not installed."""

    code = "missing_extra"


def install_command(extra: str) -> str:
    return f"pip install -e '.[{extra}]'"


def missing_extra_error(extra: str, module: str, purpose: str) -> MissingExtra:
    return MissingExtra(
        f"{purpose} needs the '{extra}' extra, which is not installed (no module {module!r}); "
        f"install it with `{install_command(extra)}`."
    )


def require(extra: str, purpose: str) -> None:
    """Import every module of `extra`, or raise MissingExtra naming it and its install command.

    Raises:
        MissingExtra: a module of the extra cannot be imported.
    """
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise missing_extra_error(extra, module, purpose) from None


def extra_for(module: str | None) -> str | None:
    """The extra that installs `module` (or a package it belongs to), if any."""
    if not module:
        return None
    for extra, modules in EXTRAS.items():
        if any(module == m or module.startswith(m + ".") or m.startswith(module + ".") for m in modules):
            return extra
    return None
