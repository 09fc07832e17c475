-- daily balance snapshots of each account, with gaps: an account is snapshotted on about
-- two days in three between 2026-01-01 and 2026-03-31
select a.account_id, d::date as snapshot_date,
       cast(100 + (hash(a.account_id * 11 + epoch(d)::bigint) % 900) as decimal(12, 2)) as mrr,
       1 + (hash(a.account_id * 13 + epoch(d)::bigint) % 20)::int as seats
from range(1, 26) a(account_id)
cross join range(date '2026-01-01', date '2026-04-01', interval 1 day) t(d)
where hash(a.account_id * 17 + epoch(d)::bigint) % 3 <> 0
