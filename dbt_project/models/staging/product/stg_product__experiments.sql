with

source as (

    select * from {{ source('product', 'experiments') }}

),

renamed as (

    select
        cast(experiment_id as {{ string_type() }}) as experiment_id,
        cast(experiment_name as {{ string_type() }}) as experiment_name,
        cast(feature_key as {{ string_type() }}) as feature_key,
        cast(hypothesis as {{ string_type() }}) as hypothesis,
        cast(control_variant as {{ string_type() }}) as control_variant,
        {{ utc_timestamp("started_at") }} as started_at,
        {{ utc_timestamp("ended_at") }} as ended_at
    from source

)

select * from renamed
