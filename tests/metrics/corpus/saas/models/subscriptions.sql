select i as subscription_id,
       1 + (hash(i * 3) % 25)::int as account_id,
       timestamp '2026-01-01' + to_days((hash(i * 5) % 90)::int) + to_hours((hash(i * 7) % 24)::int) as started_at,
       case when hash(i * 11) % 3 = 0
            then timestamp '2026-01-01' + to_days((hash(i * 5) % 90)::int + 5 + (hash(i * 13) % 40)::int) end
           as cancelled_at,
       cast(20 + hash(i * 17) % 200 as decimal(10, 2)) as amount
from range(1, 201) t(i)
