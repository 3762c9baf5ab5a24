"""Purpose categories of access agreements: what kind of use a consumer asks for.

Its own module, with nothing but the standard library, so the `mesh` command can offer the categories as
choices without importing pydantic and the agreement model when it starts (every command pays that).
"""

from __future__ import annotations

from enum import StrEnum


class PurposeCategory(StrEnum):
    """What kind of use the purpose is: policies allow, auto-approve or refuse by category."""

    REPORTING = "reporting"
    ANALYTICS = "analytics"
    DATA_PRODUCT = "data_product"
    OPERATIONS = "operations"
    DATA_SCIENCE = "data_science"
    MACHINE_LEARNING = "machine_learning"
    COMPLIANCE = "compliance"
    CUSTOMER_SUPPORT = "customer_support"
