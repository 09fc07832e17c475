select i as user_id, ['PT', 'ES', 'FR'][1 + (hash(i * 3) % 3)::int] as country
from range(1, 81) t(i)
