-- the days the daily check flagged: the rows of fct_metric_checks outside their band
with

checks as (

    select * from {{ ref('fct_metric_checks') }}

),

final as (

    select
        check_key as alert_key,
        metric_name,
        metric_date,
        metric_value,
        baseline_median,
        lower_bound,
        upper_bound,
        direction,
        score
    from checks
    where is_anomaly

)

select * from final
