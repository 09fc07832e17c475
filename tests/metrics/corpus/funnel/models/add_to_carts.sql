select event_id, user_id, session_id, device, occurred_at, amount from {{ ref('events') }} where event_type = 'add_to_cart'
