"""Notifications northstar decided to send, with their delivery status (northstar/notify)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from api.schemas.convert import from_dataclass
from core.notification_state import StateStore, body_of

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: str = Field(description="The idempotency key (X-Northstar-Id): one per destination, subject and state.")
    destination: str
    subscription: str
    kind: str = Field(description="anomaly_alerts | slo_status | digest")
    subject: str
    state: str
    build_id: str | None
    title: str
    created_at: str
    status: str = Field(description="pending | sent | failed (a failed one is retried by the next run)")
    attempts: int
    last_error: str | None
    http_status: int | None
    sent_at: str | None
    body: dict[str, Any] = Field(description="The webhook body (schema northstar.notification/v1).")


class NotificationsResponse(BaseModel):
    notifications: list[NotificationOut]


@router.get("", response_model=NotificationsResponse)
def list_notifications(
    settings: SettingsDep,
    status: Annotated[Literal["pending", "sent", "failed"] | None, Query(description="Only this status.")] = None,
    destination: Annotated[str | None, Query(description="Only this destination.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NotificationsResponse:
    rows = StateStore.in_dir(settings.data_dir).list(limit, status, destination)
    return NotificationsResponse(
        notifications=[from_dataclass(NotificationOut, d, id=d.key, body=body_of(d)) for d in rows]
    )
