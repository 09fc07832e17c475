with

launches as (

    select * from {{ ref('stg_product__launches') }}

),

final as (

    select
        launch_id,
        feature_key,
        launch_name,
        tier,
        owner_team,
        launched_at
    from launches

)

select * from final
