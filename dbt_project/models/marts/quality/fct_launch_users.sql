-- one row per (launch, user) for the users active within the launch's horizon
-- (var launch_horizon_days, 28 by default, on each side of launched_at): before/after
-- activity, first use of the launched feature and the user's feedback after the launch.
-- Internal users are already absent from the event and feedback marts read here.
{% set horizon = var('launch_horizon_days', 28) %}
with

launches as (

    select * from {{ ref('dim_launches') }}

),

events as (

    select * from {{ ref('fct_events') }}

),

feedback as (

    select * from {{ ref('fct_feedback') }}

),

activity as (

    select
        launches.launch_id,
        events.user_id,
        bool_or(events.event_ts < launches.launched_at) as is_active_before,
        -- days 0..6 and 7..13 counted in 24-hour steps from launched_at
        bool_or(
            events.event_ts >= launches.launched_at
            and events.event_ts < launches.launched_at + interval '7 day'
        ) as is_active_week_1,
        bool_or(
            events.event_ts >= launches.launched_at + interval '7 day'
            and events.event_ts < launches.launched_at + interval '14 day'
        ) as is_active_week_2,
        min(case
            when
                events.feature_key = launches.feature_key
                and events.event_ts >= launches.launched_at
                then events.event_ts
        end) as first_used_at
    from launches
    inner join events
        on
            events.event_ts >= launches.launched_at - interval '{{ horizon }} day'
            and events.event_ts < launches.launched_at + interval '{{ horizon }} day'
    group by launches.launch_id, events.user_id

),

feedback_after as (

    select
        launches.launch_id,
        feedback.user_id,
        sum(case
            when feedback.nps_score >= 9 then 100
            when feedback.nps_score <= 6 then -100
            when feedback.nps_score is not null then 0
        end) as nps_points,
        count(feedback.nps_score) as nps_responses,
        sum(case when feedback.csat_score >= 4 then 1 else 0 end) as csat_satisfied,
        count(feedback.csat_score) as csat_responses
    from launches
    inner join feedback
        on
            feedback.submitted_at >= launches.launched_at
            and feedback.submitted_at < launches.launched_at + interval '{{ horizon }} day'
    group by launches.launch_id, feedback.user_id

),

final as (

    select
        activity.launch_id || ':' || activity.user_id as launch_user_key,
        activity.launch_id,
        activity.user_id,
        launches.feature_key,
        launches.launched_at,
        activity.is_active_before,
        activity.is_active_week_1,
        activity.is_active_week_2,
        activity.first_used_at,
        ({{ epoch_seconds('activity.first_used_at') }} - {{ epoch_seconds('launches.launched_at') }}) / 86400.0
            as days_to_first_use,
        activity.first_used_at is not null as is_adopter,
        coalesce(activity.first_used_at < launches.launched_at + interval '7 day', false)
            as is_adopter_week_1,
        cast(coalesce(feedback_after.nps_points, 0) as bigint) as nps_points,
        cast(coalesce(feedback_after.nps_responses, 0) as bigint) as nps_responses,
        cast(coalesce(feedback_after.csat_satisfied, 0) as bigint) as csat_satisfied,
        cast(coalesce(feedback_after.csat_responses, 0) as bigint) as csat_responses
    from activity
    inner join launches
        on activity.launch_id = launches.launch_id
    left join feedback_after
        on
            activity.launch_id = feedback_after.launch_id
            and activity.user_id = feedback_after.user_id

)

select * from final
