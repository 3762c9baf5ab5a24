"""Asset builders: one module per way a product is built (source landing, SQL, Python, dbt)."""
