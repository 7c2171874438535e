"""A stage fails fast, before any work, when its MLflow store cannot be reached."""
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO

from pipeline.core.errors import PipelineError
from pipeline.runtime import tracking


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on leaving: nothing listens there


def test_an_unreachable_server_is_one_line_naming_the_fix_within_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("SPARSEJEPA_MLFLOW", raising=False)
    start = time.monotonic()
    with pytest.raises(PipelineError, match="unreachable.*MLFLOW_TRACKING_URI.*SPARSEJEPA_MLFLOW=off"):
        tracking.check_store()
    assert time.monotonic() - start < 10


def test_a_read_only_or_switched_off_store_passes_or_fails_as_it_should(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSEJEPA_MLFLOW", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    tracking.check_store()  # a missing folder under a writable one is made by MLflow
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{locked / 'mlflow.db'}")
        if not os.access(locked, os.W_OK):  # root may write anywhere
            with pytest.raises(PipelineError, match="not writable"):
                tracking.check_store()
        monkeypatch.setenv("SPARSEJEPA_MLFLOW", "off")
        tracking.check_store()  # tracking off: nothing to reach
    finally:
        locked.chmod(0o700)


def test_a_stage_checks_the_store_before_its_work(tmp_path):
    # stages.report with a missing report folder would fail on its inputs; the store's error comes first.
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port()}", "PATH": "/usr/bin:/bin"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stages.report", "--under", "nowhere"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and time.monotonic() - start < 60
    assert done.stderr.strip().splitlines()[-1].startswith("error: MLflow tracking store http://127.0.0.1:")


def test_a_probe_records_dataset_is_named_digested_and_sized_for_mlflow():
    import dataclasses

    from conftest import REPO

    from pipeline.artifacts.records import read_probe
    from pipeline.eval.record import dataset_input
    from pipeline.runtime.tracking import DatasetInput

    record = read_probe(REPO / "reports/probe/jepa/seed0/target/fashion_mnist.json")
    given = DatasetInput(**dataset_input(record))
    assert (given.name, given.context) == ("fashion_mnist", "probe") and given.source.startswith("http")
    assert given.tags["probe_test"] == str(record.n_test) and given.tags["images_train"] == str(record.data["num_train"])
    other = dataclasses.replace(record, data={**record.data, "num_train": 1})
    assert DatasetInput(**dataset_input(other)).digest != given.digest  # another subset, another digest
