-- The customer_360 v1 port: customer master + revenue (sales v1) + instrument activity, per customer.
with revenue as (
    select
        customer_id,
        -- Rounded to cents: a float sum in parallel is not bit-identical from run to run.
        round(sum(revenue), 2) as lifetime_revenue_eur,
        sum(order_count) as order_count,
        min(month) as first_order_month,
        max(month) as last_order_month
    from {{ input('sales.sales') }}
    group by customer_id
),
runs as (
    select * from {{ input('diagnostics.instrument_runs') }}
),
recent as (
    select
        customer_id,
        count(distinct instrument_id) as instruments_installed,
        count(*) filter (where started_at >= (select max(started_at) from runs) - interval 90 day) as runs_last_90d,
        avg(case when status <> 'passed' then 1.0 else 0.0 end)
            filter (where started_at >= (select max(started_at) from runs) - interval 90 day) as run_failure_rate
    from runs
    group by customer_id
)
select
    c.customer_id,
    c.customer_name,
    c.customer_type,
    c.country_code,
    coalesce(r.lifetime_revenue_eur, 0) as lifetime_revenue_eur,
    coalesce(r.order_count, 0) as order_count,
    r.first_order_month,
    r.last_order_month,
    coalesce(i.instruments_installed, 0) as instruments_installed,
    coalesce(i.runs_last_90d, 0) as runs_last_90d,
    cast(i.run_failure_rate as double) as run_failure_rate
from {{ input('customers.customer_master') }} as c
left join revenue as r on r.customer_id = c.customer_id
left join recent as i on i.customer_id = c.customer_id
