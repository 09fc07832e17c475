-- property-management companies hosts belong to (the far end of a two-hop join)
select i as company_id, ['alpine', 'coastal', 'urban', 'rural'][i] as segment
from range(1, 5) t(i)
