-- Candidate batch of the deprecated sales.sales v1 port, served cheaply from v2 for existing
-- consumers: v1 keyed months as 'YYYY-MM' text and reported revenue as a float.
select
    {% if target.type == 'snowflake' %}to_char(sales_month, 'YYYY-MM'){% else %}strftime(sales_month, '%Y-%m'){% endif %} as month,
    customer_id,
    product_line,
    order_count,
    cast(net_revenue_eur as double) as revenue
from {{ ref('sales_v2') }}
