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


def _start_server(root):
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2).close()
            return uri, proc, log
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)


def _stop(proc, log) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("mlflow")
    uri, proc, log = _start_server(tmp_path_factory.mktemp("mlflow_server"))
    yield uri
    _stop(proc, log)


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
        data = tracking.DatasetInput("fashion_mnist", "0123abcd", "http://example.org/train.gz", "probe",
                                     {"probe_fit": "7200", "probe_test": "5000"})
        with tracking.Run("probe", "sparse_jepa", "fashion_mnist", 0, {"sparsity.lambda": lam}, encoder="target",
                          inputs=[data], span=(1_700_000_000.0, 1_700_000_042.5)) as run:
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
    # Under the parent a child's name leads with what tells it from its siblings (the UI shows ~15 characters).
    assert sorted({r.info.run_name for r in children}) == ["sparse_jepa/seed0/fashion_mnist/pretrain",
                                                           "sparse_jepa/seed0/target/fashion_mnist/probe"]
    assert experiment.tags[tracking.KIND_TAG] == tracking.KIND  # the UI opens on the training runs table
    assert all(r.data.params["sparsity.lambda"] == "0.1" for r in children)  # the UI filters children on it
    probe = next(r for r in children if r.data.tags["stage"] == "probe")
    # Logged after its work, the run spans the work; its dataset is the runs table's Dataset column.
    assert (probe.info.start_time, probe.info.end_time) == (1_700_000_000_000, 1_700_000_042_500)
    [logged] = probe.inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("fashion_mnist", "0123abcd")
    assert {t.key: t.value for t in logged.tags}.items() >= {"mlflow.data.context": "probe", "probe_fit": "7200"}.items()
    assert first.data.metrics == {"top1_mean.sparse_jepa.target.fashion_mnist": pytest.approx(80.1)}
    assert first.info.status == "FINISHED" and first.info.run_name == "lambda-0.1 @ 0123456"
    assert [a.path for a in client.list_artifacts(first.info.run_id, "report")] == ["report/results.md"]
    assert parents["lambda-0.2"].info.status == "RUNNING"  # visibly unfinished


def test_a_store_that_goes_away_mid_run_costs_seconds_and_loses_nothing(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    (tmp_path / "server").mkdir()
    uri, proc, log = _start_server(tmp_path / "server")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SPARSEJEPA_MLFLOW", "on")
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    output = tmp_path / "encoder.pt"
    try:
        with tracking.Run("pretrain", "jepa", "fashion_mnist", 0, {"pretrain.lr": 0.1}) as run:
            run.log_metrics({"objective": 1.0}, step=1)
            _stop(proc, log)  # the server goes away mid-run
            started = time.monotonic()
            for step in range(2, 6):
                run.log_metrics({"objective": 1.0 / step}, step=step)
            run.log_artifacts([tmp_path / "server" / "server.log"])
            output.write_text("weights")  # the work goes on and writes its output
        tracking.finish_parent({"top1": 80.0}, [output])
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            _stop(proc, log)
    assert output.read_text() == "weights"
    err = capsys.readouterr().err
    assert err.count("goes on untracked") == 1 and "misses the report's metrics" in err
    assert elapsed < 60, f"{elapsed:.0f} s waiting on a dead store"
