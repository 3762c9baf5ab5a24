-- Internal to sales.orders: type the landed ERP extract and keep the latest version of each order.
-- The ERP re-sends orders (status changes, retries); the newest update wins.
with typed as (
    select
        cast(order_id as bigint) as order_id,
        nullif(trim(customer_id), '') as customer_id,
        cast(order_ts as timestamp) as order_ts,
        trim(sku) as sku,
        lower(trim(product_line)) as product_line,
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        upper(trim(currency)) as currency,
        lower(trim(status)) as status,
        cast(updated_at as timestamp) as updated_at
    from {{ source('erp', 'orders') }}
),
ranked as (
    select *, row_number() over (partition by order_id order by updated_at desc, status desc) as version_rank
    from typed
)
select * exclude (version_rank)
from ranked
where version_rank = 1
