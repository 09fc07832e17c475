with

incidents as (

    select * from {{ ref('stg_product__incidents') }}

),

final as (

    select
        incident_id,
        severity,
        opened_at,
        resolved_at,
        feature_key,
        launch_id,
        -- null while the incident is open
        ({{ epoch_seconds('resolved_at') }} - {{ epoch_seconds('opened_at') }}) / 3600.0 as resolution_hours
    from incidents

)

select * from final
