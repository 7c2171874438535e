"""SparseJEPA, the full method: region maps, their group lasso and the KL term, all as params.yaml's
`sparsity` block sets them (pipeline/model/group_sparse.py)."""
from __future__ import annotations

from pipeline.model.group_sparse import GroupSparseJEPA


class SparseJEPA(GroupSparseJEPA):
    """Nothing fixed: lambda and beta are the `sparsity` block's."""
