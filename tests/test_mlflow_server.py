"""Against a real `mlflow server` on loopback: each DVC experiment's stage runs nest under one parent run, which the
report's last word gives the headline metrics and the results table and ends. Read back through MLflow's client."""
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipeline.runtime import tracking


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_dvc_experiments_stage_runs_nest_under_its_parent_which_the_report_finishes(server, monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("SPARSEJEPA_MLFLOW", "on")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123456789abcdef0123456789abcdef01234567")
    table = tmp_path / "results.md"
    table.write_text("| Model | top-1 |\n")
    tracking.check_store()  # the store answers

    def stages(experiment: str, lam: float, report: bool) -> None:
        monkeypatch.setenv("DVC_EXP_NAME", experiment)
        with tracking.Run("pretrain", "sparse_jepa", "fashion_mnist", 0, {"sparsity.lambda": lam}) as run:
            run.log_metrics({"objective": 0.5}, step=10)
        with tracking.Run("probe", "sparse_jepa", "fashion_mnist", 0, {"sparsity.lambda": lam}, encoder="target") as run:
            run.log_metrics({"top1": 80.0 + lam})
        if report:
            tracking.finish_parent({"top1_mean.sparse_jepa.target.fashion_mnist": 80.0 + lam}, [table])

    stages("lambda-0.1", 0.1, report=True)
    stages("lambda-0.2", 0.2, report=False)  # its report never ran
    stages("lambda-0.1", 0.1, report=False)  # the same experiment again: the same parent

    client = mlflow.MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    parents = {r.data.tags["dvc_exp"]: r for r in client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.{tracking.PARENT} = 'true'")}
    assert set(parents) == {"lambda-0.1", "lambda-0.2"}
    first = parents["lambda-0.1"]
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`{tracking.PARENT_TAG}` = '{first.info.run_id}'")
    assert sorted(r.data.tags["stage"] for r in children) == ["pretrain", "pretrain", "probe", "probe"]
    assert all(r.data.params["sparsity.lambda"] == "0.1" for r in children)  # the UI filters children on it
    assert first.data.metrics == {"top1_mean.sparse_jepa.target.fashion_mnist": pytest.approx(80.1)}
    assert first.info.status == "FINISHED" and first.info.run_name == "lambda-0.1 @ 0123456"
    assert [a.path for a in client.list_artifacts(first.info.run_id, "report")] == ["report/results.md"]
    assert parents["lambda-0.2"].info.status == "RUNNING"  # visibly unfinished
