-- Candidate batch of the sales.sales v2 port: monthly net revenue in EUR per customer and product line,
-- read from the published orders port (never from the orders candidate). Cancelled and returned orders
-- do not count as revenue.
select
    cast(date_trunc('month', o.order_date) as date) as sales_month,
    o.customer_id,
    o.product_line,
    count(*) as order_count,
    cast(sum(o.quantity) as bigint) as units,
    cast(sum(o.amount * fx.eur_per_unit) as decimal(18, 2)) as net_revenue_eur
from {{ source('port_sales', 'orders_v1') }} as o
join {{ ref('fx_rates') }} as fx on fx.currency = o.currency
where o.status not in ('cancelled', 'returned')
group by all
