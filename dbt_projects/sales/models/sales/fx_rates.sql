-- Internal to sales.sales: the corporate planning rates used to report revenue in EUR.
select * from (values
    ('EUR', cast(1.00 as decimal(8, 4))),
    ('USD', cast(0.92 as decimal(8, 4))),
    ('CHF', cast(1.05 as decimal(8, 4)))
) as rates (currency, eur_per_unit)
