"""Subscriptions as governed in the dbt project: `northstar.yml` beside `dbt_project.yml`, and a
metric's `config.meta.notify`.

    # northstar.yml
    notify:
      destinations:
        ops:                                  # a generic webhook, signed with HMAC-SHA256
          type: webhook
          url: https://hooks.example.com/northstar
          secret_env: NORTHSTAR_NOTIFY_OPS_SECRET
        product-chat:                         # a Slack-compatible incoming webhook
          type: slack
          url_env: SLACK_PRODUCT_WEBHOOK_URL
        emea:                                 # sees what the API token 'emea-reader' may see
          type: webhook
          url: https://emea.example.com/hook
          secret_env: NORTHSTAR_NOTIFY_EMEA_SECRET
          token: emea-reader
      subscriptions:
        - {name: quality-alerts, event: anomaly_alerts, metrics: [crashes, tickets], to: [ops, product-chat]}
        - {name: slo, event: slo_status, statuses: [breach], to: [ops]}
        - {name: weekly, event: digest, metrics: [active_users, revenue], period: week, to: [product-chat, emea]}

    # a metric's meta (dbt YAML): the same subscriptions, written beside the metric
    config: {meta: {notify: {event: [anomaly_alerts, slo_status], to: [ops]}}}

Secrets and webhook URLs (which are secrets for Slack) come from the environment (`*_env`),
never from the repository; a plain `url:` is for endpoints that are not secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metrics.errors import InvalidQuery

CONFIG_FILE = "northstar.yml"
KINDS = ("anomaly_alerts", "slo_status", "digest")


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook", "slack"] = "webhook"
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    token: str | None = Field(default=None, description="API token name whose scope and row policy apply.")

    @model_validator(mode="after")
    def _one_url(self) -> DestinationConfig:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("give exactly one of url or url_env")
        return self


class SubscriptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = None
    event: Literal["anomaly_alerts", "slo_status", "digest"]
    to: list[str] = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list)
    lookback_days: int = Field(default=7, ge=1, le=366)
    adverse_only: bool = False
    statuses: list[Literal["warn", "breach"]] = Field(default_factory=lambda: ["warn", "breach"])
    period: Literal["day", "week", "month"] = "week"


class NotifyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destinations: dict[str, DestinationConfig] = Field(default_factory=dict)
    subscriptions: list[SubscriptionConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class Destination:
    name: str
    type: str  # webhook | slack
    url: str
    secret: str | None = field(repr=False)
    token: str | None


@dataclass(frozen=True)
class Subscription:
    name: str
    kind: str
    destinations: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    lookback_days: int = 7
    adverse_only: bool = False
    statuses: tuple[str, ...] = ("warn", "breach")
    period: str = "week"


@dataclass(frozen=True)
class NotifyConfig:
    destinations: dict[str, Destination]
    subscriptions: tuple[Subscription, ...]
    source: Path | None

    def __bool__(self) -> bool:
        return bool(self.subscriptions)


def _event_key(entry: Any) -> Any:
    """YAML 1.1 (PyYAML, dbt) reads a bare `on:` key as the boolean true: accept it as `event`."""
    if isinstance(entry, dict):
        for key in (True, "true", "on"):
            if key in entry and "event" not in entry:
                entry = {**{k: v for k, v in entry.items() if k != key}, "event": entry[key]}
    return entry


def _bad(source: Any, problem: str) -> InvalidQuery:
    return InvalidQuery(f"{source}: {problem}", field="notify")


def load(path: Path | None, metric_meta: dict[str, dict[str, Any]] | None = None,
         environ: dict[str, str] | None = None) -> NotifyConfig:
    """The notification config of `path` (a missing file: none) plus the metrics' meta.notify.

    Raises:
        InvalidQuery: naming the file and the problem (an unknown destination, a missing
            environment variable, a malformed entry).
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None and path.exists():
        document = yaml.safe_load(path.read_text()) or {}
        if not isinstance(document, dict):
            raise _bad(path, "expected a mapping with a 'notify' key.")
        raw = document.get("notify") or {}
    if isinstance(raw, dict) and isinstance(raw.get("subscriptions"), list):
        raw = {**raw, "subscriptions": [_event_key(e) for e in raw["subscriptions"]]}
    try:
        parsed = NotifyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _bad(path, f"notify.{where}: {first['msg']}.") from None
    destinations: dict[str, Destination] = {}
    for name, d in parsed.destinations.items():
        url = d.url or environ.get(d.url_env or "")
        if not url:
            raise _bad(path, f"destination {name!r}: the environment variable {d.url_env} (its URL) is not set.")
        secret = None
        if d.secret_env:
            secret = environ.get(d.secret_env)
            if not secret:
                raise _bad(path, f"destination {name!r}: the environment variable {d.secret_env} (its signing "
                                 "secret) is not set.")
        destinations[name] = Destination(name, d.type, url, secret, d.token)
    subscriptions = [_subscription(s, i) for i, s in enumerate(parsed.subscriptions)]
    for metric, meta in sorted((metric_meta or {}).items()):
        notify = _event_key(meta.get("notify"))
        if not notify:
            continue
        kinds = notify.get("event") or ["anomaly_alerts", "slo_status"]
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            try:
                entry = SubscriptionConfig.model_validate({"name": f"{metric}:{kind}", "event": kind, "metrics": [metric],
                                                           **{k: v for k, v in notify.items() if k != "event"}})
            except ValidationError as exc:
                raise _bad(f"metric {metric!r} meta.notify", exc.errors()[0]["msg"]) from None
            subscriptions.append(_subscription(entry, len(subscriptions)))
    for s in subscriptions:
        for target in s.destinations:
            if target not in destinations:
                known = ", ".join(sorted(destinations)) or "none"
                raise _bad(path, f"subscription {s.name!r} sends to {target!r}, which is not a destination "
                                 f"(destinations: {known}).")
    return NotifyConfig(destinations, tuple(subscriptions), path)


def _subscription(entry: SubscriptionConfig, index: int) -> Subscription:
    return Subscription(entry.name or f"{entry.event}-{index + 1}", entry.event, tuple(entry.to), tuple(entry.metrics),
                        entry.lookback_days, entry.adverse_only, tuple(entry.statuses), entry.period)
