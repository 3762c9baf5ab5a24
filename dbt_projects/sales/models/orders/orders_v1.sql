-- Candidate batch of the sales.orders v1 port. Orders with a non-positive quantity or no customer are
-- ERP entry errors and are left out (see the product's limitations).
select
    order_id,
    customer_id,
    order_ts,
    cast(order_ts as date) as order_date,
    sku,
    product_line,
    quantity,
    unit_price,
    cast(quantity * unit_price as decimal(14, 2)) as amount,
    currency,
    status,
    updated_at
from {{ ref('stg_orders') }}
where quantity > 0 and customer_id is not null
