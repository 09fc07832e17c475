-- one row per UTC day: the time spine MetricFlow joins cumulative and
-- gap-filled metrics against
with

days as (

    select range as day_start
    from range(timestamp '2015-01-01', timestamp '2036-01-01', interval 1 day)

),

final as (

    select cast(day_start as date) as date_day
    from days

)

select * from final
