-- one row per UTC day: the time spine MetricFlow joins cumulative and
-- gap-filled metrics against
with

days as (

    {{ day_series('2015-01-01', '2036-01-01') }}

),

final as (

    select cast(day_start as date) as date_day
    from days

)

select * from final
