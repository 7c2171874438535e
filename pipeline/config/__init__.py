"""params.yaml as typed config: params.py loads and validates it (the only place that does), checks.py
holds the coercions and range checks, and one module per block holds its dataclass (CONFIG).

A stage imports only the modules of the blocks it declares in dvc.yaml (params.py loads them by name),
so a new probe param re-runs probes, not pretraining."""
