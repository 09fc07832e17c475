"""One notification run: evaluate every subscription against the published build, send what is
new to each destination once, and record the outcome.

Run after each published build (`northstar build`), by `northstar notify run` (digests on a
schedule: cron it), and every `notify_interval_s` by `northstar serve --notify`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.notification_state import StateStore
from core.settings import Settings
from core.tokens import TokenStore
from metrics.engine import MetricsEngine
from metrics.errors import MetricsError
from metrics.notify.notices import (
    Notice,
    anomaly_notices,
    digest_notice,
    experiment_health_notices,
    experiment_sample_notices,
    launch_notices,
    release_notices,
    slo_notices,
)
from metrics.policy import PolicyDenied, RestrictedEngine, RowPolicy
from northstar.notify import config as notify_config
from northstar.notify.config import Destination, NotifyConfig, Subscription
from northstar.notify.deliver import (
    encode,
    idempotency_key,
    post,
    send_email,
    slack_body,
    webhook_body,
)


@dataclass(frozen=True)
class Sent:
    destination: str
    subscription: str
    key: str
    title: str
    status: str  # sent | failed | would_send (dry run) | withheld
    attempts: int = 0
    error: str | None = None
    body: dict | None = None


def load_config(settings: Settings, engine: MetricsEngine) -> NotifyConfig:
    meta = {name: m.meta for name, m in engine.manifest.metrics.items()}
    return notify_config.load(settings.notify_config_path, meta)


def _view(engine: MetricsEngine, destination: Destination, tokens: TokenStore):
    """The engine as the destination may see it: its token's row policy, or everything."""
    if destination.token is None:
        return engine, None
    token = next((t for t in tokens.list() if t.name == destination.token and t.active), None)
    if token is None:
        raise PolicyDenied(
            f"destination {destination.name!r} is bound to the API token {destination.token!r}, "
            "which does not exist or is revoked; nothing is sent to it."
        )
    if not token.allows("metrics:read"):
        raise PolicyDenied(f"destination {destination.name!r}: token {token.name!r} lacks the metrics:read scope.")
    policy = RowPolicy(tuple(p.to_filter() for p in token.policy), " and ".join(p.describe() for p in token.policy))
    return (RestrictedEngine(engine, policy), policy.description) if policy else (engine, None)


def notices_for(engine, subscription: Subscription) -> list[Notice]:
    if subscription.kind == "anomaly_alerts":
        return anomaly_notices(engine, subscription.metrics, subscription.lookback_days, subscription.adverse_only)
    if subscription.kind == "slo_status":
        return slo_notices(engine, subscription.metrics, subscription.statuses, subscription.period)
    if subscription.kind == "digest":
        notice = digest_notice(engine, subscription.name, subscription.metrics, subscription.period)
        return [notice] if notice else []
    if subscription.kind == "regressed_release":
        return release_notices(engine, subscription.platforms)
    if subscription.kind == "launch_scorecard":
        return launch_notices(engine, subscription.milestones, subscription.launches)
    if subscription.kind == "experiment_sample_reached":
        return experiment_sample_notices(engine, subscription.experiments)
    if subscription.kind == "experiment_health":
        return experiment_health_notices(engine, subscription.experiments)
    raise AssertionError(subscription.kind)  # the config only admits the kinds above


def run(
    settings: Settings,
    *,
    dry_run: bool = False,
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] | None = None,
) -> list[Sent]:
    """Evaluate and deliver; returns what happened to each notification (nothing already sent)."""
    engine = MetricsEngine.open(settings.warehouse_path, postgres_dsn=settings.postgres_dsn_text)
    try:
        config = load_config(settings, engine)
        if not config:
            return []
        tokens = TokenStore.in_dir(settings.data_dir)
        state = StateStore.in_dir(settings.data_dir)
        build_id = engine.build.build_id
        out: list[Sent] = []
        for subscription in config.subscriptions:
            for name in subscription.destinations:
                destination = config.destinations[name]
                try:
                    view, restricted_to = _view(engine, destination, tokens)
                    notices = notices_for(view, subscription)
                except PolicyDenied as exc:
                    log(f"{subscription.name} -> {name}: withheld: {exc.message}")
                    out.append(Sent(name, subscription.name, "", subscription.kind, "withheld", error=exc.message))
                    continue
                except MetricsError as exc:
                    log(f"{subscription.name} -> {name}: cannot evaluate: {exc.message}")
                    out.append(Sent(name, subscription.name, "", subscription.kind, "failed", error=exc.message))
                    continue
                for notice in notices:
                    out.append(
                        _deliver(
                            settings,
                            state,
                            destination,
                            subscription,
                            notice,
                            build_id,
                            restricted_to,
                            dry_run,
                            log,
                            sleep,
                        )
                    )
        return [s for s in out if s.status != "already_sent"]
    finally:
        engine.close()


def _deliver(
    settings: Settings,
    state: StateStore,
    destination: Destination,
    subscription: Subscription,
    notice: Notice,
    build_id: str,
    restricted_to: str | None,
    dry_run: bool,
    log,
    sleep,
) -> Sent:
    key = idempotency_key(destination.name, notice.subject, notice.state)
    existing = state.get(key)
    if existing is not None and existing.status == "sent":
        return Sent(destination.name, subscription.name, key, notice.title, "already_sent")
    body = webhook_body(
        notice,
        key=key,
        subscription=subscription.name,
        destination=destination.name,
        build_id=build_id,
        base_url=settings.public_base_url,
        restricted_to=restricted_to,
    )
    if dry_run:
        log(f"would send to {destination.name} ({destination.type}): {notice.title}")
        return Sent(destination.name, subscription.name, key, notice.title, "would_send", body=body)
    state.record(
        key,
        destination.name,
        subscription.name,
        notice.kind,
        notice.subject,
        notice.state,
        build_id,
        notice.title,
        encode(body).decode(),
    )
    retries = {
        "max_attempts": settings.notify_max_attempts,
        "backoff_s": settings.notify_backoff_s,
        **({"sleep": sleep} if sleep else {}),
    }
    if destination.smtp is not None:
        outcome = send_email(destination.smtp, body, **retries)
    else:
        payload = encode(slack_body(body) if destination.type == "slack" else body)
        outcome = post(destination.url, payload, key=key, kind=notice.kind, secret=destination.secret, **retries)
    status = "sent" if outcome.ok else "failed"
    state.finish(key, status, outcome.attempts, outcome.error, outcome.http_status)
    log(
        f"{status} to {destination.name} after {outcome.attempts} attempt(s): {notice.title}"
        + (f" ({outcome.error})" if outcome.error else "")
    )
    return Sent(destination.name, subscription.name, key, notice.title, status, outcome.attempts, outcome.error, body)


def start_background(settings: Settings, log: Callable[[str], None] = lambda _: None):
    """`serve --notify`: a daemon thread that runs every `notify_interval_s` seconds (and so
    soon after each newly published build)."""
    import threading

    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                if settings.notify_config_path.exists():
                    run(settings, log=log)
            except Exception as exc:  # keep serving; the next round tries again
                log(f"notification run failed: {exc}")
            stop.wait(settings.notify_interval_s)

    thread = threading.Thread(target=loop, name="northstar-notify", daemon=True)
    thread.start()
    return stop
