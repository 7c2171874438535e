"""Benchmarks that print figures: `python -m pipeline.bench.prepare`, `python -m pipeline.bench.pretrain`."""
