with

accounts as (

    select * from {{ ref('stg_product__accounts') }}

),

final as (

    select
        account_id,
        account_name,
        plan,
        industry,
        region,
        created_at
    from accounts

)

select * from final
