-- 400 bookings between 2026-01-05 and 2026-04-04 (90 days)
select i as booking_id,
       1 + (hash(i * 3) % 30)::int as listing_id,
       1 + (hash(i * 5) % 60)::int as guest_id,
       timestamp '2026-01-05' + to_days((hash(i * 41) % 90)::int) + to_minutes((hash(i * 43) % 1440)::int) as booked_at,
       1 + (hash(i * 47) % 9)::int as nights,
       cast(40 + (hash(i * 53) % 40000) / 100.0 as decimal(10, 2)) as price_usd,
       (hash(i * 59) % 3 = 0) as is_instant,
       date '2026-01-05' + (hash(i * 41) % 90)::int + (hash(i * 61) % 30)::int as check_in_date
from range(1, 401) t(i)
