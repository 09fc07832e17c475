-- hosts, each with a company (two hops from a booking: booking -> listing -> host)
select i as host_id,
       1 + (hash(i * 31) % 4)::int as company_id,
       (hash(i * 17) % 3 = 0) as is_superhost,
       ['new', 'established', 'veteran'][1 + (hash(i * 13) % 3)::int] as host_tier
from range(1, 13) t(i)
