"""The benchmark commands run end to end at toy size and write their reports (their figures are not
asserted: speed is shown by the benchmarks' output, not by timed tests)."""
from __future__ import annotations

import json

import torch
from conftest import repo_params

from pipeline.bench import prepare as bench_prepare
from pipeline.bench import pretrain as bench_pretrain


def test_pretrain_benchmark_writes_every_variant_and_phase(tmp_path, capsys):
    bench_pretrain.main(["--batch", "4", "--rounds", "1", "--steps", "1", "--warmup", "1", "--breakdown-steps", "1",
                         "--workers", "0", "--compile", "off", "--out", str(tmp_path)])
    (report_file,) = tmp_path.glob("pretrain-*.json")
    report = json.loads(report_file.read_text())
    assert [r["variant"] for r in report["results"]] == ["jepa", "sparse_jepa", "baseline"]
    for r in report["results"]:
        assert r["images_per_s"] > 0 and r["gflops_per_image"] > 0 and r["host_data_ms_per_batch"] > 0
        assert set(r["phase_ms"]) == set(bench_pretrain.PHASES)
        assert r["phase_ms"]["forward"] > 0 and r["phase_ms"]["backward"] > 0
    assert "JEPA vs baseline loop" in capsys.readouterr().out


def test_baseline_collator_masks_like_the_pipeline():
    collate = bench_pretrain.PerImageMaskCollator(repo_params().masks, (8, 8))
    batch = [(torch.zeros(3, 32, 32), 0)] * 16
    images, context, targets, centers = collate(batch)
    assert images.shape == (16, 3, 32, 32) and targets.shape[:2] == (16, 4) and centers.shape == (16, 4, 2)
    for b in range(16):
        assert not set(context[b].tolist()) & set(targets[b].flatten().tolist())  # context avoids every target
        assert context[b].tolist() == sorted(set(context[b].tolist()))


def test_prepare_benchmark_reports_rate_and_memory(tmp_path, capsys):
    bench_prepare.main(["--images", "300", "--size", "16", "--out", str(tmp_path)])
    (report_file,) = tmp_path.glob("prepare-*.json")
    (run,) = json.loads(report_file.read_text())["runs"]
    assert run["images"] == 300 + bench_prepare.CLASSES
    assert run["images_per_s"] > 0 and run["peak_rss_anon_mb"] > 0
