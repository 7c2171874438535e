"""SparseJEPA on the VICReg base: SparseJEPA's latent-to-region maps and their group lasso (proximal SGD), on
JEPA + VICReg's variance and covariance terms on the context encoder's output.

    L = L_jepa + variance_weight * V(z) + covariance_weight * C(z) + lambda * mean_{g,j} ||W^(g)[:, j]||_2

Nothing of its own: each hook runs SparseJEPA's and VICReg-JEPA's (they start from super()'s), so the
objective, the logged terms and the summary are both methods' (pipeline/methods/sparse_jepa.py,
vicreg_jepa.py). The base is VICReg because it led JEPA and SIGReg on validation (README, *Recipe choices on
validation*).
"""
from __future__ import annotations

from pipeline.methods.sparse_jepa import SparseJEPA
from pipeline.methods.vicreg_jepa import VICRegJEPA


class SparseVICRegJEPA(SparseJEPA, VICRegJEPA):
    """SparseJEPA (maps, lasso, optional KL) whose base is JEPA + VICReg."""
