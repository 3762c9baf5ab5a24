"""Contracts as documents: standards out and in, and what a change breaks. Imports wings below `observe`.

Public API: `odcs` (ODCS v3.2 export/import), `odps` (ODPS descriptors), `contract_diff` (`mesh contract
diff`), `impact` (`mesh impact`: consumers per version).
"""
