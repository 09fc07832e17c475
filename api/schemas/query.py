"""Request and response bodies of the query routes (`http-api.md`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metrics import engine
from metrics.query.request import Filter, FilterOp, MetricQuery, query_from_text

Format = Literal["json", "csv", "parquet", "arrow"]
Completeness = Literal["meta", "columns"]


class FilterModel(BaseModel):
    """`{"field": "country", "op": "in", "values": ["US", "DE"]}`."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, examples=["country"])
    op: str = Field(examples=["in"], description="=, !=, <, <=, >, >=, in, not_in, is_null, is_not_null")
    value: str | int | float | bool | None = None
    values: list[str | int | float | bool] | None = None

    def to_filter(self) -> Filter:
        op = FilterOp.parse(self.op)
        return Filter(field=self.field, op=op, value=self.value, values=tuple(self.values or ()))


class MetricQueryRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "metrics": ["active_users", "crash_free_user_rate"],
                    "group_by": ["metric_time__week", "platform"],
                    "where": [{"field": "country", "op": "in", "values": ["US", "DE"]}],
                    "start": "2026-01-01",
                    "end": "2026-04-01",
                    "order_by": ["metric_time__week", "-active_users"],
                    "limit": 1000,
                }
            ]
        },
    )

    metrics: list[str] = Field(default_factory=list, description="Metric names; at least one.")
    group_by: list[str] = Field(default_factory=list)
    where: list[FilterModel | str] = Field(
        default_factory=list,
        description="Structured filters, or dbt-style filter strings such as "
        "\"{{ Dimension('user__country') }} = 'US'\".",
    )
    start: str | None = Field(default=None, description="Inclusive, on metric_time (YYYY-MM-DD or ISO timestamp).")
    end: str | None = Field(default=None, description="Exclusive, on metric_time.")
    order_by: list[str] = Field(default_factory=list, description="Output columns; prefix '-' for descending.")
    limit: int | None = Field(default=None, ge=0)
    offset: int = Field(
        default=0, ge=0, description="Rows to skip: the paging cursor (`meta.next_offset` of the previous page)."
    )
    saved_query: str | None = Field(default=None, description="Run a saved query from the dbt project by name.")
    timezone: str | None = Field(
        default=None,
        examples=["Europe/Berlin"],
        description="IANA zone for buckets, start and end (default UTC); DST-correct.",
    )
    week_start: Literal["monday", "sunday"] = Field(
        default="monday", description="First day of week buckets (default ISO Monday)."
    )
    completeness: Completeness = Field(
        default="meta",
        description="How the answer says which buckets are incomplete: `meta` (JSON `meta.incomplete`; CSV "
        "and binary formats: the `X-Northstar-Incomplete` header counts them) or `columns` (also a "
        "boolean `<metric>__complete` column per metric, after the others, in every format).",
    )

    @field_validator("metrics", "group_by", "order_by", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def to_query(self) -> MetricQuery:
        # Structured filters first, then the filter strings (the order the engine applies them).
        structured = [w.to_filter() for w in self.where if isinstance(w, FilterModel)]
        return query_from_text(
            metrics=self.metrics,
            group_by=self.group_by,
            where=[*structured, *(w for w in self.where if isinstance(w, str))],
            start=self.start,
            end=self.end,
            order_by=self.order_by,
            limit=self.limit,
            timezone=self.timezone,
            week_start=self.week_start,
        )


class Column(BaseModel):
    name: str
    type: str


class BuildWarning(BaseModel):
    """A warn-severity dbt test that found rows; the build published anyway."""

    test: str = Field(description="The dbt test's name.")
    test_type: str = Field(description="The generic test, e.g. expression_is_true, relationships.")
    model: str = Field(description="The dbt model (or landing table) it checks.")
    column: str | None = Field(description="The column it checks, if any.")
    failing_rows: int = Field(description="How many rows the test found.")
    sample_rows: list[dict[str, Any]] = Field(description="A few of those rows.")
    message: str

    @classmethod
    def of(cls, warning: engine.BuildWarning) -> BuildWarning:
        return cls.model_validate(dataclasses.asdict(warning))


class Freshness(BaseModel):
    build_id: str = Field(description="The warehouse build that answered.")
    built_at: str | None
    tests_passed: bool | None = Field(description="Whether every dbt test on the models read passed in that build.")
    warnings: list[BuildWarning] = Field(
        default_factory=list,
        description="Warn-severity tests on the models read that found rows in that build "
        "(data the landing contract allows but that looks unusual).",
    )
    newest_metric_time: str | None = Field(description="The newest metric_time in the models read.")
    models: list[str] = Field(description="The dbt models the query read.")
    cached: bool
    elapsed_ms: float


class IncompleteBucket(BaseModel):
    bucket: str | None = Field(
        description="The bucket's first day (the time group-by value); null: the whole "
        "range of a query without a time group-by."
    )
    metric: str
    reason: Literal["range_cut", "before_data", "after_data", "window_not_covered"] = Field(
        description="window_not_covered: the value is null (not known); the others: the value covers only part "
        "of the bucket."
    )
    message: str


class QueryMeta(Freshness):
    rows_total: int
    next_offset: int | None
    incomplete: list[IncompleteBucket] = Field(
        description="Each (bucket, metric) that is not complete, with the reason; every other value is complete."
    )


class MetricQueryResponse(BaseModel):
    columns: list[Column]
    rows: list[list[Any]]
    meta: QueryMeta


class CompileResponse(BaseModel):
    sql: str = Field(description="Ready to paste into a SQL editor: values inlined as literals.")
    parameterized_sql: str = Field(description="What the engine runs, with bind parameters.")
    parameters: dict[str, Any]
    explanation: dict[str, Any]
