with

source as (

    select * from {{ source('product', 'incidents') }}

),

renamed as (

    select
        cast(incident_id as {{ string_type() }}) as incident_id,
        cast(severity as {{ string_type() }}) as severity,
        {{ utc_timestamp("opened_at") }} as opened_at,
        {{ utc_timestamp("resolved_at") }} as resolved_at,
        cast(feature_key as {{ string_type() }}) as feature_key,
        cast(launch_id as {{ string_type() }}) as launch_id
    from source

)

select * from renamed
