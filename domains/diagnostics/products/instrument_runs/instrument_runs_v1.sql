-- The instrument_runs v1 port: runs with the site's country from the customer master port.
select
    r.run_id,
    r.instrument_id,
    r.instrument_model,
    r.customer_id,
    c.country_code,
    r.assay,
    r.started_at,
    cast(r.started_at as date) as run_date,
    r.duration_seconds,
    r.status,
    r.error_code
from {{ ref('stg_runs') }} as r
left join {{ input('customers.customer_master') }} as c on c.customer_id = r.customer_id
