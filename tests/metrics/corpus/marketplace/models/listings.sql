select i as listing_id,
       1 + (hash(i * 7) % 12)::int as host_id,
       ['Lisbon', 'Porto', 'Madrid', 'Paris'][1 + (hash(i * 11) % 4)::int] as city,
       ['entire_home', 'private_room'][1 + (hash(i * 19) % 2)::int] as room_type,
       timestamp '2025-06-01' + to_days((hash(i * 23) % 200)::int) as listed_at
from range(1, 31) t(i)
