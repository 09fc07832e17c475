-- the daily anomaly check: each day's value against a seasonal, robust band built from the
-- same weekday of the previous weeks (median and MAD, so one launch or incident week in the
-- baseline does not move the band)
{% set weeks = var('anomaly_baseline_weeks', 4) | int %}
{% set min_weeks = var('anomaly_min_baseline_weeks', 3) %}
{% set threshold = var('anomaly_threshold', 5.0) %}
{% set relative_floor = var('anomaly_relative_floor', 0.1) %}
with

metric_values as (

    select * from {{ ref('fct_metric_values_daily') }}

),

baseline_values as (

    select
        checked.metric_name,
        checked.metric_date,
        earlier.metric_value as baseline_value
    from metric_values as checked
    inner join metric_values as earlier
        on checked.metric_name = earlier.metric_name
        -- same weekday, 1..N weeks back
        and {{ dbt.datediff('earlier.metric_date', 'checked.metric_date', 'day') }} between 7 and {{ weeks * 7 }}
        and {{ dbt.datediff('earlier.metric_date', 'checked.metric_date', 'day') }} % 7 = 0

),

medians as (

    select
        metric_name,
        metric_date,
        percentile_cont(0.5) within group (order by baseline_value) as baseline_median,
        count(*) as baseline_weeks
    from baseline_values
    group by metric_name, metric_date

),

deviations as (

    select
        medians.metric_name,
        medians.metric_date,
        percentile_cont(0.5) within group (
            order by abs(baseline_values.baseline_value - medians.baseline_median)
        ) as baseline_mad
    from medians
    inner join baseline_values
        on
            medians.metric_name = baseline_values.metric_name
            and medians.metric_date = baseline_values.metric_date
    group by medians.metric_name, medians.metric_date

),

bands as (

    select
        medians.metric_name,
        medians.metric_date,
        medians.baseline_median,
        deviations.baseline_mad,
        medians.baseline_weeks,
        -- 1.4826 * MAD estimates the standard deviation of normal data; the relative floor
        -- keeps a flat baseline (MAD 0) from flagging every small wobble, and the Poisson
        -- floor sqrt(median) does the same for small counts
        {{ threshold }} * greatest(
            1.4826 * deviations.baseline_mad,
            {{ relative_floor }} * abs(medians.baseline_median),
            case
                when medians.metric_name in (
                    'active_users', 'events', 'sessions', 'feature_users', 'new_users',
                    'crashes', 'errors', 'tickets'
                ) then sqrt(greatest(medians.baseline_median, 1))
                else 0
            end
        ) as half_width
    from medians
    inner join deviations
        on
            medians.metric_name = deviations.metric_name
            and medians.metric_date = deviations.metric_date
    where medians.baseline_weeks >= {{ min_weeks }}

),

final as (

    select
        metric_values.metric_name || ':' || cast(metric_values.metric_date as {{ string_type() }}) as check_key,
        metric_values.metric_name,
        metric_values.metric_date,
        metric_values.metric_value,
        bands.baseline_median,
        bands.baseline_mad,
        cast(bands.baseline_weeks as integer) as baseline_weeks,
        bands.baseline_median - bands.half_width as lower_bound,
        bands.baseline_median + bands.half_width as upper_bound,
        case
            when metric_values.metric_value > bands.baseline_median + bands.half_width then 'above'
            when metric_values.metric_value < bands.baseline_median - bands.half_width then 'below'
        end as direction,
        coalesce(
            metric_values.metric_value > bands.baseline_median + bands.half_width
            or metric_values.metric_value < bands.baseline_median - bands.half_width,
            false
        ) as is_anomaly,
        -- how far outside the band centre, in band half-widths (|score| > 1 is an anomaly)
        (metric_values.metric_value - bands.baseline_median) / nullif(bands.half_width, 0) as score
    from metric_values
    inner join bands
        on
            metric_values.metric_name = bands.metric_name
            and metric_values.metric_date = bands.metric_date

)

select * from final
