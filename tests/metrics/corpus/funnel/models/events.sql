-- an event stream: 600 events of 80 users in 150 sessions over March 2026; a session
-- belongs to one user and one device
with sessions as (
    select s as session_id,
           1 + (hash(s * 7) % 80)::int as user_id,
           ['ios', 'android', 'web'][1 + (hash(s * 11) % 3)::int] as device,
           timestamp '2026-03-01' + to_minutes((hash(s * 13) % (31 * 1440))::int) as session_start
    from range(1, 151) t(s)
)
select i as event_id, s.user_id, s.session_id, s.device,
       case when hash(i * 17) % 10 < 6 then 'visit' when hash(i * 17) % 10 < 8 then 'add_to_cart' else 'purchase' end
           as event_type,
       s.session_start + to_minutes((hash(i * 19) % 2880)::int) as occurred_at,
       case when hash(i * 17) % 10 >= 8 then cast(5 + hash(i * 23) % 95 as decimal(10, 2)) end as amount
from range(1, 601) t(i)
join sessions s on s.session_id = 1 + (hash(i * 5) % 150)::int
