"""The product developer's experience: scaffold, onboard, example data. Imports wings below it.

Public API: `scaffold` (`mesh new domain|product`), `onboard` (`mesh new domain --from-dbt`), `check`
(`check_product`, what scaffolded tests call), `generate` (`mesh generate`: deterministic example
extracts). The rest are their parts: `prompts`, `governance_defaults`, `contract_plan`, `templates`,
`spec_document`, `yaml_style`, `workspace`, `changes`, `errors` for scaffolding; `dbt_manifest`,
`port_derivation`, `contract_derivation`, `project_edits`, `onboard_plan` for onboarding.
"""
