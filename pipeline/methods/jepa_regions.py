"""The ladder's first rung above JEPA: SparseJEPA's region-conditioned group maps (on their own proximal
SGD, no bias) with neither the group lasso (lambda 0) nor the KL term. Against JEPA it measures what the
G maps, their optimiser and init change; against SparseJEPA, what the lasso adds."""
from __future__ import annotations

from pipeline.model.group_sparse import GroupSparseJEPA


class RegionMapsJEPA(GroupSparseJEPA):
    FIXED = {"lambda_": 0.0, "kl": False}
