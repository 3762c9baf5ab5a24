"""Contracts as documents: standards out and in, and what a change breaks. Imports wings below `observe`.

Public API: `odcs` (ODCS v3.2 export/import; the face of the `odcs_*` modules), `odps` (ODPS
descriptors), `contract_diff` (`mesh contract diff`, judging with the `diff_*` modules), `impact`
(`mesh impact`: consumers per version), `column_impact` (readers per column, and column changes judged
by them), `data_diff` (a port's rows, branch against prod, for `mesh ci`).
"""
