"""Every probe on one features file, as one record: the full linear probe, the k-NN probe, the low-label probe
and the features' multi-information (what the probe stage writes per method, seed, encoder and dataset)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from pipeline.artifacts.features import read_features
from pipeline.artifacts.prepared import dataset_input as prepared_input
from pipeline.artifacts.records import ProbeRecord
from pipeline.config.params import Params
from pipeline.core.hardware import resolve_device
from pipeline.eval.knn import run_knn
from pipeline.eval.low_label import run_low_label
from pipeline.eval.monitor import multi_information
from pipeline.eval.probe import run_probe


def record_label(key: str, seed: int | None, encoder: str) -> str:
    """How logs and benchmarks name a record: method/seed<k>/encoder, or pixels/control for a control drawn once."""
    return f"{key}/{encoder}" if seed is None else f"{key}/seed{seed}/{encoder}"


def probe_features(source: Path, key: str, seed: int | None, encoder: str, dataset: str,
                   run_params: Params) -> tuple[ProbeRecord, dict, tuple[float, float]]:
    """The record of the features at `source`, the encoder params they were extracted with and when the work
    started and ended (epoch seconds; the record's MLflow run spans them, though it is logged afterwards).
    `run_params`: the params of the seed whose validation split and low-label draws the probes use."""
    started = time.time()
    f = read_features(source)
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    device = resolve_device()
    cfg, num_classes = run_params.probe, int(f["num_classes"])
    result = run_probe(train_x, train_y, test_x, test_y, num_classes, cfg, run_params.seed, device)
    knn_val, knn_test = run_knn(train_x, train_y, test_x, test_y, num_classes, cfg.knn_k, cfg.knn_temperature,
                                cfg.val_fraction, run_params.seed, device)
    low_label = run_low_label(train_x, train_y, test_x, test_y, num_classes, cfg, run_params.seed, device)
    # multi_information: of the same images for every method, the test split's features.
    record = ProbeRecord.of(result, method=key, seed=seed, encoder=encoder, dataset=dataset,
                            multi_information=multi_information(test_x), knn_top1=knn_test, knn_val_top1=knn_val,
                            low_label=low_label, data=f["dataset"])
    return record, f["encoder_params"], (started, time.time())


def dataset_input(record: ProbeRecord) -> dict:
    """The probed dataset as MLflow's runs table shows it, with the probe's split sizes."""
    return prepared_input(record.dataset, record.data, "probe",
                          {"probe_fit": record.n_train, "probe_val": record.n_val, "probe_test": record.n_test})
