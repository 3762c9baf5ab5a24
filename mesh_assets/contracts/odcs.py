"""Open Data Contract Standard (ODCS v3.2.0): every output port as a data contract, and back.

Public API, one concept a module (this module only hands their names on):

- `odcs_vocabulary`     the version written, check ids, mesh custom properties, names shared both ways
- `odcs_standard`       validation against the installed standard's JSON Schema and pydantic models
- `odcs_servers`        `Deployment`: the warehouse a contract is written for, its servers, physical types
- `odcs_quality`        a port's contract rules (as its asset checks run them) in ODCS's quality vocabulary
- `odcs_export`         `contract()` of one port, `export_contracts()` of the mesh, each checked first
- `odcs_import`         `import_contract()`: an ODCS contract written elsewhere as a `dataproduct.yaml` draft
- `odcs_import_schema`  a contract's schema object read back as columns, primary key and quality
- `odcs_draft`          the draft an import makes and the mandatory fields it still lacks

Nothing heavy is imported at module import (YAML, JSON Schema and the ODCS models load on first use), so
code locations and the catalog can name contracts without slowing their loads.
"""

from __future__ import annotations

from mesh_assets.contracts.odcs_draft import FieldGap, ImportResult, draft_yaml
from mesh_assets.contracts.odcs_export import checked_contract, contract, export_contracts, sla_properties
from mesh_assets.contracts.odcs_import import import_contract, read_contract
from mesh_assets.contracts.odcs_quality import port_rules
from mesh_assets.contracts.odcs_servers import Deployment, physical_types, servers
from mesh_assets.contracts.odcs_standard import (
    ContractError,
    json_schema,
    model_errors,
    schema_errors,
    validation_errors,
)
from mesh_assets.contracts.odcs_vocabulary import (
    API_VERSION,
    DEFAULT_DIR,
    KIND,
    VENDOR,
    governance_properties,
    mesh_type,
    spec_file_of,
    support_url,
    to_yaml,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_DIR",
    "KIND",
    "VENDOR",
    "ContractError",
    "Deployment",
    "FieldGap",
    "ImportResult",
    "checked_contract",
    "contract",
    "draft_yaml",
    "export_contracts",
    "governance_properties",
    "import_contract",
    "json_schema",
    "mesh_type",
    "model_errors",
    "physical_types",
    "port_rules",
    "read_contract",
    "schema_errors",
    "servers",
    "sla_properties",
    "spec_file_of",
    "support_url",
    "to_yaml",
    "validation_errors",
]
