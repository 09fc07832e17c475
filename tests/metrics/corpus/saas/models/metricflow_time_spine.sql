-- the day spine, with a fiscal quarter (starting in February) as a custom granularity
select cast(range as date) as date_day,
       cast(date_trunc('quarter', range - interval 1 month) + interval 1 month as date) as fiscal_quarter
from range(date '2025-01-01', date '2027-01-01', interval 1 day)
