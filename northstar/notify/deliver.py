"""Formatting, signing and posting notifications.

The webhook body (schema `northstar.notification/v1`, README "Notifications"):

    {"schema": "northstar.notification/v1", "id": <idempotency key>, "kind": "anomaly_alerts",
     "subscription": ..., "destination": ..., "subject": "anomaly_alerts:tickets", "state": ...,
     "build_id": ..., "created_at": ..., "title": ..., "summary": ..., "link": <absolute URL>,
     "restricted_to": <the token's row policy, or null>, "figures": [{"metric", "label", "period",
     "value", "compared_to", "comparison", "change", "relative_change", "status", "lower_bound",
     "upper_bound"}]}

Every POST carries `X-Northstar-Id` (the idempotency key: a receiver drops a repeat),
`X-Northstar-Timestamp` (Unix seconds) and, with a secret, `X-Northstar-Signature:
v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Slack destinations get Slack's incoming
webhook body (`text` plus Block Kit blocks), kept within its limits. Email destinations get a
multipart/alternative message (plain text and HTML) over SMTP, with the idempotency key as its
Message-ID and in `X-Northstar-Id`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from metrics.notify.notices import Notice
from northstar.notify.config import Smtp

SCHEMA = "northstar.notification/v1"
#: Slack: a section's text is at most 3000 characters, a message at most 50 blocks.
SLACK_SECTION_CHARS = 3000
SLACK_MAX_FIGURES = 10
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def idempotency_key(destination: str, subject: str, state: str) -> str:
    """Stable across runs and builds for the same news to the same destination.

    >>> idempotency_key("ops", "slo_status:incidents", "week:2026-03-23:breach")[:12]
    'ntf_96f89222'
    """
    digest = hashlib.sha256(f"{destination}\n{subject}\n{state}".encode()).hexdigest()
    return "ntf_" + digest[:32]


def webhook_body(
    notice: Notice,
    *,
    key: str,
    subscription: str,
    destination: str,
    build_id: str | None,
    base_url: str,
    restricted_to: str | None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "id": key,
        "kind": notice.kind,
        "subscription": subscription,
        "destination": destination,
        "subject": notice.subject,
        "state": notice.state,
        "build_id": build_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "title": notice.title,
        "summary": notice.summary,
        "link": base_url.rstrip("/") + notice.link,
        "restricted_to": restricted_to,
        "figures": [dataclasses.asdict(f) for f in notice.figures],
    }


def _fmt(value: float | None) -> str:
    from metrics.notify.notices import _number

    return _number(value)


def slack_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message for a webhook body: a header, the summary, the figures
    and a link, each block within Slack's limits."""
    lines = []
    for f in body["figures"][:SLACK_MAX_FIGURES]:
        change = "" if f["relative_change"] is None else f" ({f['relative_change'] * 100:+.1f}%)"
        status = f" · {f['status']}" if f["status"] else ""
        lines.append(
            f"• *{f['label']}* {f['period']}: *{_fmt(f['value'])}* vs {f['compared_to'].replace('_', ' ')} "
            f"{_fmt(f['comparison'])}{change}{status}"
        )
    if len(body["figures"]) > SLACK_MAX_FIGURES:
        lines.append(f"… and {len(body['figures']) - SLACK_MAX_FIGURES} more")
    figures = "\n".join(lines)[:SLACK_SECTION_CHARS]
    scope = f" · rows where {body['restricted_to']}" if body.get("restricted_to") else ""
    return {
        "text": body["title"][:SLACK_SECTION_CHARS],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": body["title"][:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body["summary"][:SLACK_SECTION_CHARS]}},
            *([{"type": "section", "text": {"type": "mrkdwn", "text": figures}}] if figures else []),
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": (
                            f"<{body['link']}|Open in northstar> · build {body['build_id']} · {body['kind']}{scope}"
                        )[:SLACK_SECTION_CHARS],
                    }
                ],
            },
        ],
    }


#: An email subject longer than this is cut (RFC 5322 asks for lines under 78 characters; mail
#: clients show about this much).
EMAIL_SUBJECT_CHARS = 180


def _change(relative: float | None) -> str:
    return "" if relative is None else f"{relative * 100:+.1f}%"


def _figure_line(f: dict[str, Any]) -> str:
    change = "" if f["relative_change"] is None else f" ({_change(f['relative_change'])})"
    status = f" · {f['status']}" if f["status"] else ""
    return (
        f"{f['label']} {f['period']}: {_fmt(f['value'])} vs {f['compared_to'].replace('_', ' ')} "
        f"{_fmt(f['comparison'])}{change}{status}"
    )


def email_message(body: dict[str, Any], smtp: Smtp) -> EmailMessage:
    """The notification as an email: plain text first, the same as HTML as the alternative."""
    message = EmailMessage()
    message["Subject"] = "[northstar] " + body["title"][:EMAIL_SUBJECT_CHARS]
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{body['id']}@northstar>"
    message["X-Northstar-Id"] = body["id"]
    message["X-Northstar-Event"] = body["kind"]
    scope = f"\nRows where {body['restricted_to']}." if body.get("restricted_to") else ""
    lines = [_figure_line(f) for f in body["figures"]]
    message.set_content(
        "\n".join(
            [
                body["title"],
                "",
                body["summary"],
                "",
                *(f"- {line}" for line in lines),
                "",
                f"Open in northstar: {body['link']}",
                f"Build {body['build_id']} · {body['kind']} · {body['subscription']}{scope}",
                "",
            ]
        )
    )
    esc = html.escape
    rows = "".join(
        f'<tr><td>{esc(f["label"])}</td><td>{esc(f["period"])}</td><td align="right"><b>{esc(_fmt(f["value"]))}</b>'
        f"</td><td>{esc(f['compared_to'].replace('_', ' '))} {esc(_fmt(f['comparison']))}</td><td>"
        f"{esc(_change(f['relative_change']))}</td>"
        f"<td>{esc(f['status'] or '')}</td></tr>"
        for f in body["figures"]
    )
    message.add_alternative(
        f"<html><body><h2>{esc(body['title'])}</h2><p>{esc(body['summary'])}</p>"
        + (
            f'<table border="1" cellpadding="4" cellspacing="0"><tr><th>Metric</th><th>Period</th><th>Value</th>'
            f"<th>Compared with</th><th>Change</th><th>Status</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + f'<p><a href="{esc(body["link"], quote=True)}">Open in northstar</a></p>'
        f"<p><small>Build {esc(str(body['build_id']))} · {esc(body['kind'])}"
        f"{' · rows where ' + esc(body['restricted_to']) if body.get('restricted_to') else ''}</small></p>"
        "</body></html>",
        subtype="html",
    )
    return message


def send_email(
    smtp: Smtp,
    body: dict[str, Any],
    *,
    max_attempts: int = 4,
    backoff_s: float = 0.5,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Send over SMTP with retries: a connection error or a 4xx (temporary) answer is retried
    with exponential backoff; a 5xx answer (a refused login, sender or recipient) is final."""
    message = email_message(body, smtp)
    code: int | None = None
    error: str | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            if smtp.security == "ssl":
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout_s, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s)
            with client:
                if smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(message)
            return Outcome(True, attempt, 250, None)
        except smtplib.SMTPRecipientsRefused as exc:
            return Outcome(False, attempt, None, f"SMTP recipients refused: {', '.join(exc.recipients)}")
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            error = f"SMTP {exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            if not 400 <= code < 500:
                return Outcome(False, attempt, code, error)
        except (smtplib.SMTPException, OSError) as exc:
            code, error = None, f"{type(exc).__name__}: {exc}"
        if attempt < max_attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Outcome(False, max_attempts, code, error)


def sign(secret: str, timestamp: str, payload: bytes) -> str:
    """`v1=` + HMAC-SHA256 over "<timestamp>.<body>".

    >>> sign("s3cret", "1700000000", b'{"a":1}')[:19]
    'v1=1698a50bc74d1ff1'
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    return "v1=" + mac.hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    http_status: int | None
    error: str | None


def post(
    url: str,
    payload: bytes,
    *,
    key: str,
    kind: str,
    secret: str | None,
    max_attempts: int = 4,
    backoff_s: float = 0.5,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST with retries: a connection error, a timeout or a 408/425/429/5xx answer is retried
    with exponential backoff (`backoff_s` doubled each time); any other 4xx is final."""
    status: int | None = None
    error: str | None = None
    for attempt in range(1, max_attempts + 1):
        timestamp = str(int(time.time()))  # fresh per attempt: a receiver may refuse stale ones
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "northstar-notify/1",
            "X-Northstar-Id": key,
            "X-Northstar-Event": kind,
            "X-Northstar-Timestamp": timestamp,
        }
        if secret:
            headers["X-Northstar-Signature"] = sign(secret, timestamp, payload)
        request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
                status = response.status
            return Outcome(True, attempt, status, None)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code not in RETRY_STATUSES:
                return Outcome(False, attempt, status, error)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < max_attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Outcome(False, max_attempts, status, error)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()
