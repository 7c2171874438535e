"""The benchmark commands run end to end at toy size and write their reports (their figures are not
asserted: speed is shown by the benchmarks' output, not by timed tests)."""
from __future__ import annotations

import dataclasses
import json

import torch
from conftest import repo_params

from pipeline import methods
from pipeline.bench import prepare as bench_prepare
from pipeline.bench import pretrain as bench_pretrain
from pipeline.bench import probe as bench_probe
from pipeline import artifacts
from pipeline.artifacts.features import write_features


def test_pretrain_benchmark_writes_every_variant_and_phase(tmp_path, capsys):
    bench_pretrain.main(["--batch", "4", "--rounds", "1", "--steps", "1", "--warmup", "1", "--breakdown-steps", "1",
                         "--workers", "0", "--compile", "off", "--out", str(tmp_path)])
    (report_file,) = tmp_path.glob("pretrain-*.json")
    report = json.loads(report_file.read_text())
    assert report_file.with_suffix(".md").read_text() == bench_pretrain.table_md(report)  # the README's table
    # Every pretrained method of the registry, in its order, then the reference DataLoader loop.
    pretrained = [m.key for m in methods.all_methods() if m.pretrained]
    assert [r["variant"] for r in report["results"]] == [*pretrained, "baseline"]
    assert pretrained == ["jepa", "sparse_jepa"]
    for r in report["results"]:
        assert r["images_per_s"] > 0 and r["gflops_per_image"] > 0 and r["host_data_ms_per_batch"] > 0
        assert set(r["phase_ms"]) == set(bench_pretrain.PHASES)
        assert r["phase_ms"]["forward"] > 0 and r["phase_ms"]["backward"] > 0
    out = capsys.readouterr().out
    assert "JEPA vs baseline loop: " in out and "; SparseJEPA vs JEPA: " in out  # the registry baseline's names


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


def test_the_benchmark_table_finds_the_baseline_method_by_name_not_by_place(capsys):
    def result(variant: str, images_per_s: float) -> dict:
        return {"variant": variant, "images_per_s": images_per_s, "step_ms": 1.0, "gflops_per_image": 1.0,
                "tflops_per_s": 1.0, "process_peak_rss_gb": 1.0, "host_data_ms_per_batch": 2.0,
                "phase_ms": {p: 1.0 for p in bench_pretrain.PHASES}}

    bench_pretrain.print_table({"device": "cpu", "compile": "off", "results": [
        result("baseline", 100.0), result("sparse_jepa", 300.0), result("jepa", 400.0)]})
    out = capsys.readouterr().out
    assert "JEPA vs baseline loop: 4.00x; SparseJEPA vs JEPA: 0.75x" in out


def test_the_markdown_table_names_methods_and_marks_the_loops_wait():
    report = {"device": "GPU X", "compile": "auto", "date": "2026-12-05", "command": "bench",
              "results": [{"variant": v, "batch": 512, "timed_steps": 60, "images_per_s": ips, "step_ms": step,
                           "gflops_per_image": 3.19, "tflops_per_s": 31.4, "peak_gpu_memory_gb": 3.33,
                           "process_peak_rss_gb": 1.8, "phase_ms": {p: ms for p in bench_pretrain.PHASES}}
                          for v, ips, step, ms in (("jepa", 9866.0, 51.9, 1.7), ("baseline", 6342.2, 1234.0, 250.0))]}
    lines = bench_pretrain.table_md(report).splitlines()
    assert lines[0].startswith("GPU X, batch 512, 60 timed steps per variant")
    assert lines[2].endswith("| TFLOP/s | peak GPU memory |")
    assert lines[4] == ("| JEPA | 9,866 | 51.9 ms | 1.7 ms | 1.7 ms | 1.7 ms | 1.7 ms | 1.7 ms | 1.7 ms | 3.19 | 31.4 "
                        "| 3.33 GB |")
    assert lines[5].startswith("| baseline loop | 6,342 | 1.23 s | 250 ms (waiting) | — | 250 ms |")


def test_probe_benchmark_times_every_probe_of_every_record_the_stages_would_read(tmp_path):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 4
    for key, seed, encoder in (("pixels", None, "raw"), ("jepa", 0, "target"), ("jepa", 0, "context")):
        feats = torch.randn(200, 6, generator=gen) + labels[:, None].float()
        write_features(artifacts.features_path(key, "toy", seed, encoder, tmp_path), feats, labels.numpy(),
                       feats[:80], labels[:80].numpy(), 4, {})
    found = bench_probe.records(None, [0, 1], "toy", tmp_path)
    assert found == [("pixels", None, "raw"), ("jepa", 0, "target"), ("jepa", 0, "context")]  # stages' order
    probe = dataclasses.replace(repo_params(sections=["probe"]).probe, low_label=(5, 10))
    timed = bench_probe.time_record(artifacts.features_path("jepa", "toy", 0, "target", tmp_path), probe, 0)
    assert list(timed["seconds"]) == ["linear", "knn", "low_label_5", "low_label_10"]
    assert all(v >= 0 for v in timed["seconds"].values()) and timed["iterations"] > 0 and timed["rows"] == 200
    report = {"device": "cpu", "pipeline": "default", "dataset": "toy", "seeds": [0], "command": "c", "date": "d",
              "records": [{"method": "jepa", "seed": 0, "encoder": "target", **timed}]}
    lines = bench_probe.table_md(report).splitlines()
    assert lines[2].startswith("| record | rows x features | linear | knn | 5 / class | 10 / class | all |")
    assert lines[4].startswith("| jepa/seed0/target | 200 x 6 |")
    assert lines[5].startswith("| **all records** |") and "(100%)" not in lines[5]
