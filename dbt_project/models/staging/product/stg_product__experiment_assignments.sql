with

source as (

    select * from {{ source('product', 'experiment_assignments') }}

),

renamed as (

    select
        cast(experiment_id as {{ string_type() }}) as experiment_id,
        cast(user_id as {{ string_type() }}) as user_id,
        cast(variant as {{ string_type() }}) as variant,
        {{ utc_timestamp("assigned_at") }} as assigned_at
    from source

)

select * from renamed
