select i as account_id,
       ['starter', 'team', 'enterprise'][1 + (hash(i * 3) % 3)::int] as plan,
       ['emea', 'amer', 'apac'][1 + (hash(i * 5) % 3)::int] as region,
       timestamp '2025-10-01' + to_days((hash(i * 7) % 90)::int) as created_at
from range(1, 26) t(i)
