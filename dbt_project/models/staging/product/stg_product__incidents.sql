with

source as (

    select * from {{ source('product', 'incidents') }}

),

renamed as (

    select
        cast(incident_id as varchar)   as incident_id,
        cast(severity as varchar)      as severity,
        cast(opened_at as timestamp)   as opened_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(feature_key as varchar)   as feature_key,
        cast(launch_id as varchar)     as launch_id
    from source

)

select * from renamed
