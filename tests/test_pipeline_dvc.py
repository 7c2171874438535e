"""The whole DVC pipeline at toy size on real FashionMNIST (from the offline mirror), with a toy method
variant registered the way a contributor adds one (one model file, one registry entry), then
`dvc exp run -S sparsity.lambda=...`, which must leave every other method's stages untouched.

This copies the project into a fresh git + DVC repo, so it exercises dvc.yaml exactly as a
user's clone would. About two minutes on a 2-core CPU.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

TOY = {
    # 6x6 patch grid: the smallest on which the default masks fit. FashionMNIST only: CI's real
    # `dvc repro` of the quick setting runs CLEVR/Count's. Two seeds: the report's paired statistics.
    "seeds": [0, 1],
    "data": {"image_size": 24, "probe": ["fashion_mnist"]},
    "subsets": {"fashion_mnist": {"train": 8, "test": 0}},
    "model": {"width": 16, "depth": 1, "heads": 2},
    "predictor": {"width": 8, "depth": 1, "heads": 2},
    "pretrain": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0.2, "checkpoint_every": 2, "log_every": 1},
    "extract": {"batch_size": 2048},
    "probe": {"max_iter": 200},
}
DATASETS = ("fashion_mnist",)
# A method variant as a contributor adds one: a model file overriding two hooks, and a registry entry.
TOY_MODEL = '''"""Toy JEPA: JEPA whose context latents are halved before the predictor (a test variant)."""
import torch

from pipeline.methods.jepa import JEPA


class ToyJEPA(JEPA):
    def context_latents(self, z, noise, shard):
        return 0.5 * z, {"toy_term": torch.zeros((), device=z.device)}

    def summary(self):
        return {"toy_summary": 1.0}
'''
TOY_ENTRY = """  toy:
    name: Toy JEPA
    module: toy_jepa
    build: ToyJEPA
    params: [model, predictor, masks, pretrain]
    pretrained: true
"""
JEPA_STAGES = (*(f"{stage}-{model}" for stage in ("pretrain", "extract", "probe") for model in ("jepa", "random", "toy")),
               *(f"prepare@{d}" for d in DATASETS), "extract-pixels", "probe-pixels")
SPARSE_STAGES = ("pretrain-sparse_jepa", "extract-sparse_jepa", "probe-sparse_jepa", "report")


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "FashionMNIST" / "raw").is_dir():
        pytest.skip(f"real FashionMNIST mirror not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("project")
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "reports/sweep", root / "reports/sweep")  # the report stage's dep (a committed folder)
    (root / "pipeline/methods/toy_jepa.py").write_text(TOY_MODEL)
    registry = root / "pipeline/methods/registry.yaml"
    registry.write_text(registry.read_text().replace("\nladder:", "\n" + TOY_ENTRY + "ladder:", 1))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for block, values in TOY.items():
        if isinstance(values, dict):
            params[block].update(values)
        else:
            params[block] = values
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/checkpoints/\n__pycache__/\n")

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"],
           "SPARSEJEPA_DATA_MIRROR": str(SHARED_DATA), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "PYTHONUNBUFFERED": "1"}
    for key in ("MLFLOW_TRACKING_URI", "SPARSEJEPA_CHECKPOINTS", "SPARSEJEPA_MLFLOW", "DVC_ROOT", "DVC_EXP_NAME",
                "PYTHONPATH"):
        env.pop(key, None)
    # The variant's stages: the one command that writes dvc.yaml from the registry.
    dag = run([sys.executable, "-m", "pipeline.dag"], root, env)
    run(["git", "init", "-q"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.analytics", "false"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "toy project"], root, env)
    repro = run(["dvc", "repro"], root, env)
    lock_after_repro = yaml.safe_load((root / "dvc.lock").read_text())
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "toy run"], root, env)
    exp = run(["dvc", "exp", "run", "-S", "sparsity.lambda=0.5"], root, env)
    return {"root": root, "env": env, "repro": repro, "exp": exp, "lock_before": lock_after_repro, "dag": dag}


def test_repro_runs_every_stage_and_writes_the_report(project):
    root = project["root"]
    assert set(JEPA_STAGES) | set(SPARSE_STAGES) <= ran_stages(project["repro"])
    records = [root / "reports/probe/pixels/raw/fashion_mnist.json", root / "reports/probe/pixels/pca/fashion_mnist.json"]
    records += [root / f"reports/probe/pixels/seed{seed}/gaussian/fashion_mnist.json" for seed in (0, 1)]
    for model in ("random", "jepa", "sparse_jepa", "toy"):
        for seed in (0, 1):
            records.append(root / f"reports/probe/{model}/seed{seed}/target/fashion_mnist.json")
        # params.yaml's extract.encoders is [target]: the context encoder is saved, neither extracted nor probed.
        assert not (root / f"reports/probe/{model}/seed0/context").exists()
        assert not (root / f"data/features/{model}/seed0/context").exists()
    assert (root / "data/models/jepa/seed0/context.pt").exists()
    for path in records:
        probe = json.loads(path.read_text())
        assert 0 <= probe["top1"] <= 100 and probe["n_test"] == 10000 and probe["n_train"] + probe["n_val"] == 80
        assert probe["data"]["train_per_class"] == 8 and probe["data"]["listed"] == {"train": 60000, "test": 10000}
    assert json.loads(records[0].read_text())["feature_dim"] == 24 * 24  # grey: one channel of raw pixels
    # The projections are as wide as the encoders' features.
    width = json.loads(records[-1].read_text())["feature_dim"]
    assert [json.loads(p.read_text())["feature_dim"] for p in records[1:4]] == [width] * 3
    seeds = {json.loads(p.read_text())["seed"] for p in records[2:]}
    assert seeds == {0, 1} and json.loads(records[1].read_text())["seed"] is None
    assert all(json.loads(p.read_text())["knn_top1"] >= 0 for p in records)
    table = (root / "reports/results.md").read_text()
    assert "SparseJEPA" in table and "FashionMNIST" in table and "| Toy JEPA | target |" in table
    assert "| context |" not in table
    assert "| Raw pixels | — |" in table and "Toy JEPA target − JEPA target" in table
    assert "| PCA of pixels | — |" in table and "| Random projection of pixels | — |" in table
    assert "| 80 (8 per class of 60,000) | 10,000 (all) | 10 |" in table
    for figure in ("column_norms_sparse_jepa", "pretrain_curves", "probe_seeds"):
        assert (root / f"reports/figures/{figure}.png").stat().st_size > 1000
    for seed in (0, 1):
        history = (root / f"reports/pretrain/sparse_jepa/seed{seed}/history.csv").read_text().splitlines()
        assert history[0].startswith("step,") and len(history) > 2


def test_a_registered_variant_runs_through_the_dag_with_its_own_hooks(project):
    root = project["root"]
    assert "wrote dvc.yaml" in project["dag"]
    assert {"pretrain-toy", "extract-toy", "probe-toy"} <= ran_stages(project["repro"])
    summary = json.loads((root / "reports/pretrain/toy/seed1/summary.json").read_text())
    assert summary["toy_summary"] == 1.0 and summary["steps"] > 0 and summary["seed"] == 1
    assert "toy_term" in (root / "reports/pretrain/toy/seed0/history.csv").read_text().splitlines()[0]
    # The variant's stage depends on its own model file, not on the other methods' files.
    deps = [d["path"] for d in project["lock_before"]["stages"]["pretrain-toy"]["deps"]]
    assert "pipeline/methods/toy_jepa.py" in deps and "pipeline/methods/sparse_jepa.py" not in deps


def test_lambda_experiment_reruns_only_the_sparse_branch(project):
    ran = ran_stages(project["exp"])
    assert set(SPARSE_STAGES) <= ran
    assert not ran & set(JEPA_STAGES)
    lock = yaml.safe_load((project["root"] / "dvc.lock").read_text())
    for stage in JEPA_STAGES:
        assert lock["stages"][stage] == project["lock_before"]["stages"][stage], stage
    sparse = lock["stages"]["pretrain-sparse_jepa"]["params"]["params.yaml"]["sparsity"]
    assert sparse["lambda"] == 0.5


def test_dvc_compares_the_experiment_on_the_compact_metrics_and_plots_its_curves(project):
    import csv
    import io

    root, env = project["root"], project["env"]
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert set(metrics["top1"]["fashion_mnist"]) == {"raw", "pca", "gaussian", "random", "jepa", "sparse_jepa", "toy"}
    assert set(metrics["facts"]) == {"sparse_jepa"}  # the only method whose registry goals bound facts
    header = next(csv.reader(io.StringIO(run(["dvc", "exp", "show", "--csv"], root, env))))
    assert not any(".json:" in column for column in header)  # no probe record is a metric (path:key columns)
    leaves = [f"{tree}.{d}.{r}" for tree in ("top1", "top1_std") for d, rows in metrics[tree].items() for r in rows]
    assert set(leaves) <= set(header) and "facts.sparse_jepa.zero_fraction" in header
    changed = next(csv.reader(io.StringIO(run(["dvc", "exp", "show", "--csv", "--only-changed"], root, env))))
    assert "sparsity.lambda" in changed and not any(c.startswith("top1.") and ".jepa." in c for c in changed)
    plots = subprocess.run(["dvc", "plots", "show", "--json"], cwd=root, env=env, capture_output=True, text=True)
    shown = json.loads(plots.stdout)
    # (The other pipelines' reports, which this project never ran, are the only plots not found.)
    assert all(e["name"].startswith(("reports/bases/", "reports/ladder/", "reports/standard/"))
               for e in shown.get("errors", []))
    points = shown["data"]["reports/plots/pretrain_curves.csv"][0]["content"]["data"]["values"]
    assert {p["field"] for p in points} == {"jepa", "sparse_jepa", "toy"}  # a line per pretrained method
    assert all(float(p["dvc_inferred_y_value"]) > 0 for p in points)


def test_mlflow_store_holds_tagged_runs_with_params_and_metrics(project):
    db = project["root"] / "mlflow.db"
    assert db.exists(), "the default MLflow store is SQLite at the repository root"
    assert (project["root"] / "mlartifacts").is_dir() and not (project["root"] / "mlruns").exists()
    con = sqlite3.connect(db)
    tags = {}
    for run_uuid, key, value in con.execute("select run_uuid, key, value from tags"):
        tags.setdefault(run_uuid, {})[key] = value
    probes = {(t.get("dvc_exp"), t.get("method")): run for run, t in tags.items() if t.get("stage") == "probe"}
    seeds = {(t.get("method"), t.get("seed"), t.get("encoder")) for t in tags.values() if t.get("stage") == "probe"}
    assert {("jepa", "0", "target"), ("jepa", "1", "target"), ("pixels", None, "raw"), ("pixels", "1", "gaussian")} <= seeds
    assert ("workspace", "jepa") in probes and ("workspace", "sparse_jepa") in probes
    exp_names = {t["dvc_exp"] for t in tags.values()} - {"workspace"}
    assert len(exp_names) == 1  # the `dvc exp run` experiment's runs carry its name
    exp_name = exp_names.pop()
    assert (exp_name, "sparse_jepa") in probes and (exp_name, "jepa") not in probes
    for t in tags.values():
        assert {"stage", "dvc_exp", "dvc_baseline_rev"} <= set(t) or t.get("sparsejepa_parent") == "true"
    run = probes[(exp_name, "sparse_jepa")]
    params = dict(con.execute("select key, value from params where run_uuid = ?", (run,)).fetchall())
    assert params["sparsity.lambda"] == "0.5" and "pretrain.lr" in params and "probe.l2" in params
    metrics = {k for (k,) in con.execute("select key from metrics where run_uuid = ?", (run,))}
    assert {"top1", "val_top1"} <= metrics
    # One parent run per DVC experiment (the plain repro is `workspace`), every stage's run nested under its own.
    parents = {t["dvc_exp"]: run for run, t in tags.items() if t.get("sparsejepa_parent") == "true"}
    assert set(parents) == {"workspace", exp_name}
    for t in tags.values():
        if "stage" in t:
            assert t["mlflow.parentRunId"] == parents[t["dvc_exp"]]
    status = dict(con.execute("select run_uuid, status from runs").fetchall())
    assert {status[r] for r in parents.values()} == {"FINISHED"}  # each report ended its parent
    headline = {k for (k,) in con.execute("select key from metrics where run_uuid = ?", (parents[exp_name],))}
    assert "top1_mean.sparse_jepa.target.fashion_mnist" in headline
    pretrain_runs = [run for run, t in tags.items() if t.get("stage") == "pretrain"]
    steps = con.execute("select count(distinct step) from metrics where key = 'objective' and run_uuid = ?",
                        (pretrain_runs[0],)).fetchone()[0]
    assert steps >= 2  # per-step losses, not one final number
    # Pretrain and probe runs name the dataset they read (the runs table's Dataset column), one digest for both.
    logged = con.execute("select i.destination_id, d.name, d.digest, t.value from inputs i join datasets d on "
                         "i.source_id = d.dataset_uuid join input_tags t on t.input_uuid = i.input_uuid "
                         "where t.name = 'mlflow.data.context'").fetchall()
    contexts = {tags[run]["stage"]: (name, digest, context) for run, name, digest, context in logged
                if tags[run].get("stage") in ("pretrain", "probe") and name == "fashion_mnist"}
    assert contexts["pretrain"][2] == "pretrain" and contexts["probe"][2] == "probe"
    assert contexts["pretrain"][1] == contexts["probe"][1]
    assert set(pretrain_runs) <= {run for run, *_ in logged}


PAPER_DATASETS = ["cifar100", "places205", "clevr_count", "inat18"]


def test_paper_dag_flows_every_dataset_into_probes_and_the_report(tmp_path):
    """`dvc dag` with the paper setting's params (pipeline/settings/paper.yaml): each of the four datasets ->
    every extract -> probe -> report."""
    from pipeline import settings
    from pipeline.config.params import read_params_file, with_overrides
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "pipeline/methods").mkdir(parents=True)
    shutil.copy(REPO / "pipeline/methods/registry.yaml", tmp_path / "pipeline/methods/registry.yaml")
    params = with_overrides(read_params_file(REPO / "params.yaml"), settings.overrides("paper"))
    assert params["data"]["pretrain"] == "cifar100" and params["data"]["probe"] == PAPER_DATASETS
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "DVC_EXP_NAME")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    run(["git", "init", "-q"], tmp_path, env)
    run(["dvc", "init", "-q"], tmp_path, env)
    edges = set(re.findall(r'"([^"]+)" -> "([^"]+)"', run(["dvc", "dag", "--dot"], tmp_path, env)))
    for dataset in PAPER_DATASETS:
        assert (f"prepare@{dataset}", "extract-pixels") in edges
        for model in ("random", "jepa", "sparse_jepa"):
            assert (f"prepare@{dataset}", f"extract-{model}") in edges
    for model in ("random", "jepa", "sparse_jepa"):
        assert {(f"pretrain-{model}", f"extract-{model}"), (f"extract-{model}", f"probe-{model}"),
                (f"probe-{model}", "report")} <= edges
    assert {("extract-pixels", "probe-pixels"), ("probe-pixels", "report")} <= edges
    assert {("prepare@cifar100", "pretrain-jepa"), ("prepare@cifar100", "pretrain-sparse_jepa")} <= edges
    assert not any(src == "prepare@places205" and dst.startswith("pretrain") for src, dst in edges)
