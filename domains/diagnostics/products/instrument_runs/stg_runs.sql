-- Internal: typed instrument runs, one row per run (the LIMS re-sends some runs verbatim).
select distinct
    trim(run_id) as run_id,
    trim(instrument_id) as instrument_id,
    trim(instrument_model) as instrument_model,
    trim(customer_id) as customer_id,
    trim(assay) as assay,
    cast(started_at as timestamp) as started_at,
    -- Negative or missing durations are logging faults, not runs of negative length.
    case when try_cast(duration_seconds as integer) > 0 then cast(duration_seconds as integer) end
        as duration_seconds,
    lower(trim(status)) as status,
    nullif(trim(error_code), '') as error_code
from {{ source('lims.instrument_runs') }}
where run_id is not null
