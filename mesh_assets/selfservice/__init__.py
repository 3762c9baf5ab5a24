"""The product developer's experience: scaffold, onboard, example data. Imports wings below it.

Public API: `scaffold` (`mesh new domain|product`), `onboard` (`mesh new domain --from-dbt`), `generate`
(`mesh generate`: deterministic example extracts).
"""
