"""customer_master: master the CRM extract into one clean record per customer.

The CRM sends one row per update, sometimes late (an older version after a newer one), with
inconsistent emails, country codes and phone formats. The latest update wins; contact details are
normalised so consumers can join and deduplicate on them.
"""

from __future__ import annotations

import pandas as pd


def _e164(phone: pd.Series) -> pd.Series:
    # `0041 61 ...` and `+41 61 ...` are the same number; keep digits and a leading plus.
    digits = phone.str.replace(r"[^\d+]", "", regex=True)
    digits = digits.str.replace(r"^00", "+", regex=True)
    return digits.where(digits.str.len() > 4)


def customer_master_v1(inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per customer: the latest CRM version, cleaned."""
    crm = inputs["crm.customers"].copy()
    crm["customer_id"] = crm["customer_id"].str.strip()
    crm = crm[crm["customer_id"].notna() & (crm["customer_id"] != "")]
    crm["updated_at"] = pd.to_datetime(crm["updated_at"])
    crm["created_at"] = pd.to_datetime(crm["created_at"])

    versions = crm.groupby("customer_id").size().rename("crm_versions")
    first_created = crm.groupby("customer_id")["created_at"].min().rename("first_created")
    # File order is not update order: sort by update time so a late-arriving old version never wins.
    latest = crm.sort_values(["customer_id", "updated_at"]).drop_duplicates("customer_id", keep="last")
    latest = latest.set_index("customer_id").join(versions).join(first_created).reset_index()

    return pd.DataFrame(
        {
            "customer_id": latest["customer_id"],
            "customer_name": latest["customer_name"].str.strip(),
            "customer_type": latest["customer_type"].str.strip().str.lower(),
            "contact_email": latest["contact_email"].str.strip().str.lower(),
            "contact_phone": _e164(latest["contact_phone"].fillna("")),
            "country_code": latest["country_code"].str.strip().str.upper(),
            "city": latest["city"].str.strip(),
            "created_at": latest["first_created"],
            "updated_at": latest["updated_at"],
            "crm_versions": latest["crm_versions"].astype("int32"),
        }
    ).sort_values("customer_id", ignore_index=True)
