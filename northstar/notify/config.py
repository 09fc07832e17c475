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
        leads:                                # email over SMTP (STARTTLS on 587)
          type: email
          host: smtp.example.com
          port: 587
          security: starttls                  # starttls | ssl | none
          username: northstar@example.com
          password_env: NORTHSTAR_SMTP_PASSWORD
          from: northstar@example.com
          to: [product-leads@example.com]
      subscriptions:
        - {name: quality-alerts, event: anomaly_alerts, metrics: [crashes, tickets], to: [ops, product-chat]}
        - {name: slo, event: slo_status, statuses: [breach], to: [ops]}
        - {name: weekly, event: digest, metrics: [active_users, revenue], period: week, to: [product-chat, emea]}
        - {name: releases, event: regressed_release, platforms: [android], to: [ops]}
        - {name: launches, event: launch_scorecard, milestones: [7, 14, 28], to: [leads]}
        - {name: experiments, event: [experiment_sample_reached, experiment_health], to: [leads]}

    # a metric's meta (dbt YAML): the same subscriptions, written beside the metric
    config: {meta: {notify: {event: [anomaly_alerts, slo_status], to: [ops]}}}

Secrets, SMTP passwords and webhook URLs (which are secrets for Slack) come from the environment
(`*_env`), never from the repository; a plain `url:` is for endpoints that are not secret.
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
KINDS = (
    "anomaly_alerts",
    "slo_status",
    "digest",
    "regressed_release",
    "launch_scorecard",
    "experiment_sample_reached",
    "experiment_health",
)
Kind = Literal[
    "anomaly_alerts",
    "slo_status",
    "digest",
    "regressed_release",
    "launch_scorecard",
    "experiment_sample_reached",
    "experiment_health",
]


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["webhook", "slack", "email"] = "webhook"
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    token: str | None = Field(default=None, description="API token name whose scope and row policy apply.")
    # email over SMTP
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _where(self) -> DestinationConfig:
        if self.type == "email":
            if self.url or self.url_env or self.secret_env:
                raise ValueError(
                    "an email destination takes host, port, security, username, password_env, from "
                    "and to, not url, url_env or secret_env"
                )
            if not self.host or not self.sender or not self.to:
                raise ValueError("an email destination needs host, from and to")
            if self.username and not self.password_env:
                raise ValueError(
                    "an email destination with a username needs password_env (the environment "
                    "variable holding the password; never the password itself)"
                )
            return self
        if bool(self.url) == bool(self.url_env):
            raise ValueError("give exactly one of url or url_env")
        return self


class SubscriptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = None
    event: Kind
    to: list[str] = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list)
    lookback_days: int = Field(default=7, ge=1, le=366)
    adverse_only: bool = False
    statuses: list[Literal["warn", "breach"]] = Field(default_factory=lambda: ["warn", "breach"])
    period: Literal["day", "week", "month"] = "week"
    platforms: list[str] = Field(default_factory=list)  # regressed_release: only these platforms
    launches: list[str] = Field(default_factory=list)  # launch_scorecard: only these launch ids
    milestones: list[Literal[7, 14, 28]] = Field(default_factory=lambda: [7, 14, 28])
    experiments: list[str] = Field(default_factory=list)  # experiment_*: only these experiment ids


class NotifyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destinations: dict[str, DestinationConfig] = Field(default_factory=dict)
    subscriptions: list[SubscriptionConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str | None
    password: str | None = field(repr=False)
    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Destination:
    name: str
    type: str  # webhook | slack | email
    url: str  # for email: smtp://host:port (what the logs and the state table show)
    secret: str | None = field(repr=False)
    token: str | None
    smtp: Smtp | None = None


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
    platforms: tuple[str, ...] = ()
    launches: tuple[str, ...] = ()
    milestones: tuple[int, ...] = (7, 14, 28)
    experiments: tuple[str, ...] = ()


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


def load(
    path: Path | None, metric_meta: dict[str, dict[str, Any]] | None = None, environ: dict[str, str] | None = None
) -> NotifyConfig:
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
        raw = {**raw, "subscriptions": [e for entry in raw["subscriptions"] for e in _one_per_event(_event_key(entry))]}
    try:
        parsed = NotifyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _bad(path, f"notify.{where}: {first['msg']}.") from None
    destinations: dict[str, Destination] = {}
    for name, d in parsed.destinations.items():
        if d.type == "email":
            destinations[name] = _email_destination(path, name, d, environ)
            continue
        url = d.url or environ.get(d.url_env or "")
        if not url:
            raise _bad(path, f"destination {name!r}: the environment variable {d.url_env} (its URL) is not set.")
        secret = None
        if d.secret_env:
            secret = environ.get(d.secret_env)
            if not secret:
                raise _bad(
                    path,
                    f"destination {name!r}: the environment variable {d.secret_env} (its signing secret) is not set.",
                )
        destinations[name] = Destination(name, d.type, url, secret, d.token)
    subscriptions = [_subscription(s, i) for i, s in enumerate(parsed.subscriptions)]
    for metric, meta in sorted((metric_meta or {}).items()):
        notify = _event_key(meta.get("notify"))
        if not notify:
            continue
        kinds = notify.get("event") or ["anomaly_alerts", "slo_status"]
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            try:
                entry = SubscriptionConfig.model_validate(
                    {
                        "name": f"{metric}:{kind}",
                        "event": kind,
                        "metrics": [metric],
                        **{k: v for k, v in notify.items() if k != "event"},
                    }
                )
            except ValidationError as exc:
                raise _bad(f"metric {metric!r} meta.notify", exc.errors()[0]["msg"]) from None
            subscriptions.append(_subscription(entry, len(subscriptions)))
    for s in subscriptions:
        for target in s.destinations:
            if target not in destinations:
                known = ", ".join(sorted(destinations)) or "none"
                raise _bad(
                    path,
                    f"subscription {s.name!r} sends to {target!r}, which is not a destination (destinations: {known}).",
                )
    return NotifyConfig(destinations, tuple(subscriptions), path)


def _one_per_event(entry: Any) -> list[Any]:
    """`event: [a, b]` is two subscriptions (named `<name>:<event>`), as in a metric's meta."""
    if isinstance(entry, dict) and isinstance(entry.get("event"), list):
        name = entry.get("name")
        return [{**entry, "event": kind, **({"name": f"{name}:{kind}"} if name else {})} for kind in entry["event"]]
    return [entry]


def _email_destination(path: Path | None, name: str, d: DestinationConfig, environ) -> Destination:
    password = None
    if d.password_env:
        password = environ.get(d.password_env)
        if not password:
            raise _bad(
                path, f"destination {name!r}: the environment variable {d.password_env} (its SMTP password) is not set."
            )
    port = d.port or {"ssl": 465, "starttls": 587}.get(d.security, 25)
    smtp = Smtp(d.host or "", port, d.security, d.username, password, d.sender or "", tuple(d.to))
    return Destination(name, "email", f"smtp://{smtp.host}:{port}", None, d.token, smtp)


def _subscription(entry: SubscriptionConfig, index: int) -> Subscription:
    return Subscription(
        entry.name or f"{entry.event}-{index + 1}",
        entry.event,
        tuple(entry.to),
        tuple(entry.metrics),
        entry.lookback_days,
        entry.adverse_only,
        tuple(entry.statuses),
        entry.period,
        tuple(entry.platforms),
        tuple(entry.launches),
        tuple(sorted(set(entry.milestones))),
        tuple(entry.experiments),
    )
