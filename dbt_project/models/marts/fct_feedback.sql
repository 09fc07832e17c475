with

feedback as (

    select * from {{ ref('stg_product__feedback') }}

),

internal_users as (

    {{ internal_user_ids() }}

),

final as (

    select
        feedback.feedback_id,
        feedback.user_id,
        feedback.submitted_at,
        feedback.channel,
        feedback.nps_score,
        feedback.csat_score,
        feedback.comment,
        feedback.feature_key,
        case
            when feedback.nps_score >= 9 then 'promoter'
            when feedback.nps_score >= 7 then 'passive'
            when feedback.nps_score >= 0 then 'detractor'
        end as nps_category
    from feedback
    left join internal_users
        on feedback.user_id = internal_users.user_id
    where internal_users.user_id is null

)

select * from final
