"""One module per params.yaml block: its typed dataclass (CONFIG) and validation.

A stage imports only the modules of the blocks it declares in dvc.yaml (pipeline/core/params.py loads
them by name), so a new probe param re-runs probes, not pretraining."""
