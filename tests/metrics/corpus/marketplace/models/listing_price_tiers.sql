-- SCD type II: each listing's price tier over time; a listing changes tier on a day in
-- February or March (some never do: their one row has an open end)
with changes as (
    select i as listing_id,
           timestamp '2026-02-01' + to_days((hash(i * 29) % 50)::int) as changed_at,
           hash(i * 37) % 4 <> 0 as changes
    from range(1, 31) t(i)
)
select listing_id, 'standard' as price_tier, timestamp '2025-01-01' as valid_from,
       case when changes then changed_at end as valid_to
from changes
union all
select listing_id, 'premium', changed_at, null from changes where changes
