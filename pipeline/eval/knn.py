"""The k-NN probe: weighted k-nearest-neighbour voting on cosine similarity (the SSL convention: k 20,
temperature 0.07, as DINO's evaluation), on frozen features with no fitted parameters.

Unlike the linear probe on standardised features, k-NN is not invariant to an invertible linear map of the
features: a near-collapsed encoder whose features all point one way scores low here even where a linear probe
still separates its classes, so it sees what the linear probe cannot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.core.errors import PipelineError
from pipeline.eval.probe import split_train_val


def knn_predict(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, num_classes: int, k: int,
                temperature: float, chunk_rows: int = 1024) -> torch.Tensor:
    """Predicted class of each query row: the neighbours' labels weighted by exp(cosine / temperature).

    bank (N, D), bank_labels (N,), queries (M, D) -> (M,) int64. Queries go `chunk_rows` at a time, so memory
    holds one chunk's (chunk_rows, N) similarities.
    """
    if len(bank) == 0:
        raise PipelineError("k-NN probe: the bank of labelled features is empty; check the dataset subset params")
    k = min(k, len(bank))
    bank = F.normalize(bank.double(), dim=1)
    out = torch.empty(len(queries), dtype=torch.long, device=queries.device)
    for start in range(0, len(queries), chunk_rows):
        q = F.normalize(queries[start:start + chunk_rows].double(), dim=1)
        sims, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), num_classes, dtype=torch.float64, device=q.device)
        votes.scatter_add_(1, bank_labels[idx], (sims / temperature).exp())
        out[start:start + len(q)] = votes.argmax(dim=1)
    return out


def knn_top1(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor,
             num_classes: int, k: int, temperature: float) -> float:
    """Top-1 (%) of the k-NN probe on (queries, labels)."""
    pred = knn_predict(bank, bank_labels, queries, num_classes, k, temperature)
    return float((pred == labels).double().mean() * 100)


def run_knn(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
            num_classes: int, k: int, temperature: float, val_fraction: float, seed: int,
            device: torch.device | str = "cpu") -> tuple[float, float]:
    """(validation top-1, test top-1): the fitting split of train (the linear probe's, same seed) voting on its
    validation split, then all of train voting on the test split."""
    train_x, test_x, train_y, test_y = (t.to(device) for t in (train_x, test_x, train_y, test_y))
    fit_idx, val_idx = (i.to(device) for i in split_train_val(len(train_x), val_fraction, seed))
    val = knn_top1(train_x[fit_idx], train_y[fit_idx], train_x[val_idx], train_y[val_idx], num_classes, k,
                   temperature)
    return val, knn_top1(train_x, train_y, test_x, test_y, num_classes, k, temperature)
