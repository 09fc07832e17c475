"""Nothing a client sends changes the structure of the SQL: values travel as bind parameters,
names are checked against the semantic layer, filter strings are parsed against an allow-list.

Each property compiles the same query twice, once with a harmless value and once with a hostile
one, and requires the same statement text, with the hostile value only among the parameters.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.errors import MetricsError, UserError
from metrics.query.request import Filter, FilterOp, MetricQuery

HOSTILE = [
    "US'; DROP TABLE marts.fct_orders; --",
    "x' OR '1'='1",
    "/* comment */ US",
    "US\\'); SELECT 1; --",
    "\u202eSU",  # right-to-left override
    "名前'\u0000",
    "$p0",
    "'' || (select 1) || ''",
    "\n; ATTACH 'x.db' AS y; --",
]

text_values = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=0, max_size=40))


def _compile(engine, value: str, op: FilterOp = FilterOp.EQ):
    flt = (
        Filter("customer__country", op, value=value)
        if op.takes_value
        else Filter("customer__country", op, values=(value, "DE"))
    )
    return engine.compile(MetricQuery(metrics=("revenue",), group_by=("metric_time__week",), where=(flt,)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text_values, op=st.sampled_from([FilterOp.EQ, FilterOp.NE, FilterOp.LT, FilterOp.IN, FilterOp.NOT_IN]))
def test_structured_filter_values_never_change_the_statement(shop_engine, value, op):
    benign = _compile(shop_engine, "US", op)
    hostile = _compile(shop_engine, value, op)
    assert hostile.sql == benign.sql
    assert value in hostile.params.values()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text_values)
def test_literals_in_filter_strings_become_parameters(shop_engine, value):
    quoted = "'" + value.replace("'", "''") + "'"
    template = "{{ Dimension('customer__country') }} = " + quoted
    benign = shop_engine.compile(
        MetricQuery(metrics=("revenue",), where_sql=("{{ Dimension('customer__country') }} = 'US'",))
    )
    try:
        hostile = shop_engine.compile(MetricQuery(metrics=("revenue",), where_sql=(template,)))
    except UserError:
        return  # refused outright (e.g. a NUL the parser rejects) is as safe as bound
    assert hostile.sql == benign.sql
    assert value in hostile.params.values()


BENIGN_WHERE = "WHERE (t1.country = $p0)"


@pytest.mark.parametrize(
    "template,refused_with,where",
    [
        # A comment is dropped by the parser, never carried into the statement.
        ("{{ Dimension('customer__country') }} = 'US' -- and more", None, "WHERE (t1.country = $p0)"),
        ("{{ Dimension('customer__country') }} = 'US' /* x */ OR 1=1", None, "WHERE (t1.country = $p0 OR $p1 = $p2)"),
        ("{{ Dimension('customer__country') }} = 'US'; SELECT * FROM marts.dim_customers", "InvalidFilter", None),
        ("{{ Dimension('customer__country') }} IN (SELECT country FROM marts.dim_customers)", "InvalidFilter", None),
        ("{{ Dimension('customer__country') }} = read_csv('/etc/passwd')", "InvalidFilter", None),
        ("{{ Dimension('customer__country') }} = 'US') OR (1=1", "InvalidFilter", None),
        ("{{ Dimension('customer__country\\') }} = 1", "UnknownDimension", None),
        ("{{ Dimension(\"customer__country') }} = 1", "InvalidFilter", None),
    ],
)
def test_filter_strings_cannot_smuggle_sql(shop_engine, template, refused_with, where):
    query = MetricQuery(metrics=("revenue",), where_sql=(template,))
    if refused_with:
        with pytest.raises(UserError) as refused:
            shop_engine.compile(query)
        assert type(refused.value).__name__ == refused_with
        return
    compiled = shop_engine.compile(query)
    benign = shop_engine.compile(
        MetricQuery(metrics=("revenue",), where_sql=("{{ Dimension('customer__country') }} = 'US'",))
    )
    # The same statement as the benign filter's, but for the WHERE clause the filter parsed to.
    assert benign.sql.count(BENIGN_WHERE) == 1
    assert compiled.sql == benign.sql.replace(BENIGN_WHERE, where)
    assert "--" not in compiled.sql and "/*" not in compiled.sql and ";" not in compiled.sql


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text_values)
def test_names_are_looked_up_never_pasted(shop_engine, name):
    """A metric, group-by or filter name that is not in the semantic layer is refused with a
    user error; it never reaches SQL."""
    valid = {"revenue", "orders", "buyers", "new_customers", "aov"}
    for query in (
        dict(metrics=(name,)),
        dict(metrics=("revenue",), group_by=(name,)),
        dict(metrics=("revenue",), where=(Filter(name, FilterOp.EQ, value="x"),)),
    ):
        try:
            shop_engine.compile(MetricQuery(**query))
        except MetricsError as exc:
            assert isinstance(exc, UserError), exc
        else:
            assert name in valid or name.startswith(("metric_time", "customer", "order", "region")), name
