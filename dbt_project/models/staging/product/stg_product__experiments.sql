with

source as (

    select * from {{ source('product', 'experiments') }}

),

renamed as (

    select
        cast(experiment_id as varchar)   as experiment_id,
        cast(experiment_name as varchar) as experiment_name,
        cast(feature_key as varchar)     as feature_key,
        cast(hypothesis as varchar)      as hypothesis,
        cast(control_variant as varchar) as control_variant,
        cast(started_at as timestamp)    as started_at,
        cast(ended_at as timestamp)      as ended_at
    from source

)

select * from renamed
