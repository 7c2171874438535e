"""SparseJEPA: JEPA with region maps and their group lasso, as params.yaml's `sparsity` block sets them
(pipeline/model/group_sparse.py); the KL term too when `sparsity.kl` is on (off by default; the ladder's
sparse_jepa_kl rung has it on)."""
from __future__ import annotations

from pipeline.model.group_sparse import GroupSparseJEPA


class SparseJEPA(GroupSparseJEPA):
    """Nothing fixed: lambda, kl and beta are the `sparsity` block's."""
