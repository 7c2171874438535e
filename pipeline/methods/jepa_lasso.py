"""The ladder's rung below full SparseJEPA: the region maps with the group lasso (`sparsity.lambda`),
without the KL term (beta 0). Against SparseJEPA it measures what the stochastic latents add."""
from __future__ import annotations

from pipeline.model.group_sparse import GroupSparseJEPA


class GroupLassoJEPA(GroupSparseJEPA):
    FIXED = {"beta": 0.0}
