"""Stages `extract` and `probe`: pooled frozen features, linear probes, and representation signals."""
