"""The ladder's top rung: SparseJEPA plus the paper's KL term (stochastic context latents, weight
`sparsity.beta`). SparseJEPA leaves it off by default (params.yaml's `sparsity.kl`, with the measurement
that decided it); against SparseJEPA this rung measures what the KL adds."""
from __future__ import annotations

from pipeline.model.group_sparse import GroupSparseJEPA


class SparseJEPAWithKL(GroupSparseJEPA):
    FIXED = {"kl": True}
