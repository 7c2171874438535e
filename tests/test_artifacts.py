"""Every stage artefact has one path function and one format module, whose writer and reader round-trip
and whose reader turns a damaged file into one line naming it."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import repo_params

from pipeline import artifacts
from pipeline.artifacts.encoder import read_encoder, write_encoder
from pipeline.eval.features import load_encoder
from pipeline.artifacts.features import read_features, write_features
from pipeline.artifacts.records import (ProbeRecord, PretrainSummary, read_history, read_outputs, read_probe, read_summary, write_history,
                                        write_outputs, write_probe, write_summary)
from pipeline.core.errors import PipelineError
from pipeline.model.vit import Encoder


def test_paths_are_the_documented_layout():
    assert artifacts.prepared_dir("cifar100") == Path("data/prepared/cifar100")
    assert artifacts.encoder_path("jepa", 2) == Path("data/models/jepa/seed2/target.pt")
    assert artifacts.encoder_path("jepa", 2, "context") == Path("data/models/jepa/seed2/context.pt")
    assert artifacts.features_path("jepa", "cifar100", 0, "context") == Path(
        "data/features/jepa/seed0/context/cifar100.npz")
    assert artifacts.features_path("pixels", "cifar100", encoder="raw") == Path("data/features/pixels/raw/cifar100.npz")
    assert artifacts.features_path("pixels", "cifar100", 2, "gaussian") == Path(
        "data/features/pixels/seed2/gaussian/cifar100.npz")
    with pytest.raises(PipelineError, match="drawn per seed"):
        artifacts.features_path("pixels", "cifar100", encoder="gaussian")  # a drawn control needs its seed
    with pytest.raises(PipelineError, match="not a pixel control"):
        artifacts.features_path("pixels", "cifar100", 0, "target")
    assert artifacts.summary_path("jepa", 1) == Path("reports/pretrain/jepa/seed1/summary.json")
    assert artifacts.probe_path("jepa", "cifar100", 0, "target", Path("/r")) == Path(
        "/r/probe/jepa/seed0/target/cifar100.json")
    assert artifacts.probe_path("pixels", "cifar100", encoder="pca", reports=Path("/r")) == Path(
        "/r/probe/pixels/pca/cifar100.json")
    # Each stage's output folder holds exactly that stage's files.
    assert artifacts.models_dir("jepa") in artifacts.encoder_path("jepa", 0).parents
    assert artifacts.method_features_dir("jepa") in artifacts.features_path("jepa", "cifar100", 0).parents
    assert artifacts.method_probe_dir("jepa") in artifacts.probe_path("jepa", "cifar100", 0).parents
    assert artifacts.method_reports_dir("jepa") in artifacts.summary_path("jepa", 0).parents


def test_a_named_pipeline_writes_the_same_tree_under_its_name():
    assert artifacts.split_under(["jepa", "fashion_mnist"]) == (["jepa", "fashion_mnist"], artifacts.Roots())
    args, roots = artifacts.split_under(["jepa", "fashion_mnist", "--under", "ladder"])
    assert args == ["jepa", "fashion_mnist"] and roots == artifacts.Roots(Path("data/ladder"), Path("reports/ladder"))
    assert artifacts.encoder_path("jepa", 0, data=roots.data) == Path("data/ladder/models/jepa/seed0/target.pt")
    assert artifacts.probe_path("jepa", "x", 0, reports=roots.reports) == Path(
        "reports/ladder/probe/jepa/seed0/target/x.json")
    for bad in (["jepa", "--under"], ["--under", "ladder", "jepa"], ["jepa", "--under", "../x"]):
        with pytest.raises(PipelineError, match="--under <name>"):
            artifacts.split_under(bad)


def test_saved_encoders_are_what_pretraining_wrote(tmp_path):
    (tmp_path / "models/jepa/seed0").mkdir(parents=True)
    with pytest.raises(PipelineError, match="no encoder under .*seed0.* seed 0"):
        artifacts.saved_encoders("jepa", 0, artifacts.ENCODERS, tmp_path)
    for name in ("context", "target"):
        (tmp_path / f"models/jepa/seed0/{name}.pt").write_bytes(b"x")
    (tmp_path / "models/jepa/seed0/notes.pt").write_bytes(b"x")
    assert artifacts.saved_encoders("jepa", 0, ("context", "target"), tmp_path) == ["target", "context"]
    # extract.encoders: [target] (the quick setting) leaves the context encoder unextracted and unprobed.
    assert artifacts.saved_encoders("jepa", 0, ("target",), tmp_path) == ["target"]


def test_checkpoints_and_downloads_live_at_the_real_repo_also_in_temp_experiments(monkeypatch, tmp_path):
    monkeypatch.delenv("SPARSEJEPA_CHECKPOINTS", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert artifacts.checkpoint_root() == tmp_path / "checkpoints" and artifacts.raw_root() == tmp_path / "data/raw"


def test_encoder_round_trip_rebuilds_the_same_network(tmp_path):
    torch.manual_seed(0)
    encoder = Encoder(repo_params({"model.width": 16, "model.depth": 1, "model.heads": 2}).model, 16)
    write_encoder(tmp_path / "e.pt", encoder, "jepa", {"params": {"seed": 0}})
    assert read_encoder(tmp_path / "e.pt")["method"] == "jepa"
    loaded, params = load_encoder(tmp_path / "e.pt")
    assert params == {"seed": 0} and not loaded.training
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(loaded(x), encoder.eval()(x))
    write_encoder(tmp_path / "f.pt", encoder, "jepa", {"params": {"seed": 0}})
    assert (tmp_path / "e.pt").read_bytes() == (tmp_path / "f.pt").read_bytes()  # DVC sees no change


def test_features_round_trip(tmp_path):
    train, test = torch.randn(5, 3), torch.randn(2, 3)
    write_features(tmp_path / "f.npz", train, np.arange(5), test, np.arange(2), 5, {"seed": 1}, {"display_name": "X"})
    f = read_features(tmp_path / "f.npz")
    assert np.array_equal(f["train"], train.numpy()) and int(f["num_classes"]) == 5
    assert f["encoder_params"] == {"seed": 1} and f["dataset"] == {"display_name": "X"}


def test_records_round_trip(tmp_path):
    record = ProbeRecord(method="jepa", seed=0, encoder="target", dataset="toy", top1=71.5, val_top1=72.0, l2=1e-3,
                         grad_norm=1e-7, converged=True, multi_information=3.5, grid=[{"l2": 0.1, "val_top1": 70.0}], data={"display_name": "Toy"},
                         knn_top1=70.0, knn_val_top1=71.0,
                         low_label={"10": {"top1": [50.0, 52.0], "val_top1": [51.0, 53.0], "l2": [0.1, 1.0]}})
    write_probe(tmp_path / "p.json", record)
    assert read_probe(tmp_path / "p.json") == record
    assert list(json.loads((tmp_path / "p.json").read_text()))[:4] == ["method", "seed", "encoder", "dataset"]
    (tmp_path / "nan.json").write_text('{"method": "jepa", "encoder": "target", "dataset": "toy", "top1": null}')
    assert math.isnan(read_probe(tmp_path / "nan.json").top1)  # a failed run reads as NaN, not a crash
    # A record written before the key was `method` still reads.
    (tmp_path / "old.json").write_text('{"model": "jepa", "encoder": "target", "dataset": "toy", "top1": 5}')
    assert read_probe(tmp_path / "old.json").method == "jepa"
    (tmp_path / "incomplete.json").write_text('{"top1": 5}')
    with pytest.raises(PipelineError, match="lacks dataset, encoder, method"):
        read_probe(tmp_path / "incomplete.json")

    summary = PretrainSummary(method="sparse_jepa", seed=1, steps=3, final_objective=0.5, own={"zero_fraction": 0.25})
    write_summary(tmp_path / "s.json", summary)
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["zero_fraction"] == 0.25 and "own" not in on_disk  # the method's facts sit flat beside the rest
    assert read_summary(tmp_path / "s.json") == summary and read_summary(tmp_path / "none.json") is None
    assert summary.value("zero_fraction") == 0.25 and summary.value("final_objective") == 0.5
    assert math.isnan(summary.value("wall_s")) and math.isnan(summary.value("groups_per_latent"))
    with pytest.raises(PipelineError, match="clash"):
        write_summary(tmp_path / "c.json", PretrainSummary(method="x", seed=0, steps=1, own={"steps": 2}))
    write_history(tmp_path / "h.csv", [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25, "online_top1": 30.0}])
    history = read_history(tmp_path / "h.csv")
    assert list(history["loss"]) == [0.5, 0.25] and math.isnan(history["online_top1"][0])
    norms = np.random.default_rng(0).uniform(size=(4, 8))
    norms[:, ::3] = 0.0
    write_outputs(tmp_path / "o.json", {"column_norms": norms})
    assert np.array_equal(read_outputs(tmp_path / "o.json")["column_norms"], norms)  # exact, zeros stay zeros
    write_outputs(tmp_path / "empty.json", {})
    assert read_outputs(tmp_path / "empty.json") == {} and read_outputs(tmp_path / "absent.json") == {}
    with pytest.raises(PipelineError, match="NaN"):
        write_outputs(tmp_path / "bad.json", {"column_norms": np.array([[np.nan]])})
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize("reader, name", [(read_features, "x.npz"), (read_encoder, "e.pt"), (read_probe, "p.json"),
                                          (read_summary, "s.json"), (read_history, "h.csv"),
                                          (read_outputs, "o.json"), (load_encoder, "e.pt")])
def test_damaged_files_give_one_line_errors_naming_them(reader, name, tmp_path):
    bad = tmp_path / name
    bad.write_bytes(b"\xff\xfe garbage \x00")
    with pytest.raises(PipelineError) as err:
        reader(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_missing_inputs_say_how_to_make_them(tmp_path):
    with pytest.raises(PipelineError, match="not found; run `dvc repro`"):
        read_features(tmp_path / "missing.npz")
    with pytest.raises(PipelineError, match="not found; run `dvc repro`"):
        read_encoder(tmp_path / "missing.pt")
    with pytest.raises(PipelineError, match="missing; run `dvc repro`"):
        read_probe(tmp_path / "missing.json")
