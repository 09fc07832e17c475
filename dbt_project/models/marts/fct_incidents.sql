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
        (epoch(resolved_at) - epoch(opened_at)) / 3600.0 as resolution_hours
    from incidents

)

select * from final
