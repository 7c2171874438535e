"""The GPU check's end-to-end part (pipeline/bench/gpu_stages.py), on the CPU at toy size: the real stages run
in a scratch copy, the checkout is left alone, and one record holds throughput, memory and top-1."""
import json
import subprocess

import pytest
from conftest import REPO

from pipeline.bench import gpu_stages
from pipeline.core.errors import PipelineError

TOY = ["model.width=32", "model.depth=1", "model.heads=2", "predictor.width=32", "predictor.depth=1",
       "predictor.heads=2", "pretrain.batch_size=32", "subsets.fashion_mnist={train: 12, test: 6}",
       "pretrain.device=cpu", "extract.batch_size=64", "probe.l2=[0.01]", "probe.max_iter=200",
       "probe.low_label_draws=1"]


def test_the_setting_is_the_papers_model_on_fashion_mnist_at_32_px():
    values = gpu_stages.setting(3.0, {"model.depth": 1})
    assert values["model.width"] == 192 and values["predictor.depth"] == 6  # pipeline/settings/paper.yaml
    assert values["model.depth"] == 1  # a pair given on the command line wins
    assert values["data.probe"] == ["fashion_mnist"] and values["data.image_size"] == 32
    assert values["pretrain.epochs"] == 3.0 and values["pretrain.warmup_epochs"] == pytest.approx(0.3)


def test_stages_run_in_a_scratch_copy_and_one_record_holds_rate_memory_and_top1(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("SPARSEJEPA_DATA_MIRROR", str(shared_data))
    status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    gpu_stages.main(["--out", str(tmp_path), "--epochs", "1", "--methods", "random,jepa", *TOY])
    [path] = tmp_path.glob("stages-*.json")
    record = json.loads(path.read_text())
    assert [s["stage"] for s in record["stages"]] == [
        "stages.prepare fashion_mnist", "stages.pretrain random fashion_mnist", "stages.extract random",
        "stages.probe random", "stages.pretrain jepa fashion_mnist", "stages.extract jepa", "stages.probe jepa"]
    assert record["device"].startswith(("AMD", "Intel", "NVIDIA")) or "cores" in record["device"]
    assert all(s["wall_s"] > 0 and s["peak_memory_mib"] > 0 for s in record["stages"])
    assert record["pretrain"]["jepa"]["img_per_s"] > 0 and record["pretrain"]["jepa"]["steps"] == 3  # 120 // 32
    assert all(0 <= record["top1"][key]["target"] <= 100 for key in ("random", "jepa"))
    assert path.with_suffix(".md").read_text().count("stages.") == 7
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert after == status  # nothing written into the checkout


def test_an_unknown_method_fails_before_any_work(tmp_path):
    with pytest.raises(PipelineError, match="nosuch"):
        gpu_stages.main(["--out", str(tmp_path), "--methods", "nosuch"])
    assert not list(tmp_path.iterdir())
