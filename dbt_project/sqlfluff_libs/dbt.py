"""What sqlfluff's Jinja templater needs of dbt's cross-database macros (`dbt.cast`,
`dbt.datediff`) to render the models for linting, as dbt-duckdb renders them. Not used by dbt."""


def cast(field, type):  # noqa: A002  (dbt's argument name)
    return f"cast({field} as {type})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"
