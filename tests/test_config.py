"""params.yaml -> typed config: the committed file is the only home of values, a missing or bad value
fails in one clear line naming the key, and tests get params the way `dvc exp run -S` makes them."""
import pytest
import yaml
from conftest import REPO, repo_params

from pipeline.core.errors import PipelineError
from pipeline.config.params import BLOCKS, SECTIONS, as_dict, load_params, params_from_dict
from pipeline.data import sources

RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def test_committed_params_parse_and_round_trip():
    params = load_params(BLOCKS, REPO / "params.yaml")
    for name in SECTIONS:
        assert as_dict(getattr(params, name)) == RAW[name], name
    assert params.sparsity.lambda_ == RAW["sparsity"]["lambda"]  # typed attributes, `lambda` spelled lambda_


@pytest.mark.parametrize("block, key", [(block, key) for block in SECTIONS for key in RAW[block]])
def test_every_missing_key_is_a_one_line_error_naming_it(block, key):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    del raw[block][key]
    with pytest.raises(PipelineError) as err:
        params_from_dict(raw, [block])
    assert f"params.yaml has no '{block}.{key}'" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_subsets_entry_is_an_error_not_keep_everything():
    params = params_from_dict({"subsets": {"cifar100": {"train": 5, "test": 0}}}, ["subsets"])
    assert params.subsets.for_dataset("cifar100").train == 5
    with pytest.raises(PipelineError, match="no 'subsets.places205' entry"):
        params.subsets.for_dataset("places205")


def test_overrides_work_like_dvc_exp_run_set_param():
    params = repo_params({"sparsity.lambda": 0.5, "pretrain.ema": [0.9, 1.0], "seed": 7})
    assert params.sparsity.lambda_ == 0.5 and params.pretrain.ema == (0.9, 1.0) and params.seed == 7
    assert params.pretrain.lr == RAW["pretrain"]["lr"]  # the rest stays params.yaml's
    with pytest.raises(PipelineError, match="no such key"):
        repo_params({"sparsity.lamda": 0.5})
    with pytest.raises(PipelineError, match="no block 'sparse'"):
        repo_params({"sparse.lambda": 0.5})


def test_an_on_off_word_dvc_wrote_unquoted_reads_back_as_the_word(tmp_path):
    # `dvc exp run -S pretrain.compile=off` writes `compile: off` (YAML 1.2); PyYAML reads that as False.
    text = (REPO / "params.yaml").read_text().replace("  compile: auto", "  compile: off", 1)
    assert "compile: off" in text
    (tmp_path / "params.yaml").write_text(text)
    assert yaml.safe_load(text)["pretrain"]["compile"] is False
    assert load_params(["pretrain"], tmp_path / "params.yaml").pretrain.compile == "off"
    assert repo_params({"pretrain.compile": True}).pretrain.compile == "on"
    with pytest.raises(PipelineError, match="pretrain.loss = 'off' is invalid"):  # a word it cannot be stays an error
        repo_params({"pretrain.loss": False})


@pytest.mark.parametrize("override, message", [
    ({"sparsity.lambda": -0.1}, "sparsity.lambda = -0.1 is invalid"),
    ({"sparsity.kl": True, "sparsity.beta": 0.0}, "sparsity.beta = 0.0 is invalid; it must be > 0 when sparsity.kl is true"),
    ({"sparsity.map_optimizer": "adamw"},
     "sparsity.lambda = 0.0225 is invalid; it must be 0 when sparsity.map_optimizer is adamw"),
    ({"sparsity.map_optimizer": "sgd"},
     "sparsity.map_optimizer = 'sgd' is invalid; it must be proximal, dual_averaging or adamw"),
    ({"sparsity.map_step": 0.0}, "sparsity.map_step = 0.0 is invalid; it must be > 0 (dual averaging's step)"),
    ({"sparsity.map_window": -1}, "sparsity.map_window = -1 is invalid; it must be >= 0"),
    ({"sparsity.map_warmup": -1}, "sparsity.map_warmup = -1 is invalid; it must be >= 0"),
    ({"pretrain.lr": "fast"}, "pretrain.lr must be a number"),
    ({"pretrain.lr": float("nan")}, "pretrain.lr must be finite"),
    ({"pretrain.device": "tpu"}, "pretrain.device"),
    ({"pretrain.ema": [0.99]}, "pretrain.ema must be a list of 2 values"),
    ({"data.pretrain": "cifar100", "data.probe": ["fashion_mnist"]}, "data.pretrain"),
    ({"model.width": 130}, "divisible by model.heads"),
    ({"data.probe": ["fashion_mnist", "fashion_mnist"]}, "it must be a list of distinct datasets"),
    ({"data.image_size": 30}, "data.image_size = 30 is invalid; it must be a multiple of model.patch_size = 4"),
    ({"seeds": [0, 1.5]}, "seeds must be an integer"),
    ({"seeds": [0, 0]}, "seeds = [0, 0] is invalid; it must be a non-empty list of distinct integers >= 0"),
    ({"seeds": []}, "seeds = [] is invalid"),
    ({"seeds": 3}, "seeds must be a list"),
    ({"subsets.cifar100.train": -1}, "subsets.cifar100.train = -1 is invalid"),
    ({"subsets.cifar100": 500}, "subsets.cifar100 must be a mapping with keys train and test"),
    ({"extract.encoders": ["context"]}, "extract.encoders = ['context'] is invalid; it must be distinct names"),
    ({"extract.encoders": ["target", "target"]}, "extract.encoders = ['target', 'target'] is invalid"),
    ({"extract.encoders": ["target", "student"]}, "extract.encoders = ['target', 'student'] is invalid"),
    ({"extract.encoders": "target"}, "extract.encoders must be a list"),
])
def test_bad_params_fail_with_one_line_naming_the_key(override, message):
    with pytest.raises(PipelineError) as err:
        repo_params(override)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("raw, sections, message", [
    ({"sparsity": {**RAW["sparsity"], "lamda": 0.1}}, ["sparsity"], "unknown key 'sparsity.lamda'"),
    ({"subsets": {"cifar100": {"val": 5}}}, ["subsets"], "subsets.cifar100 must be a mapping"),
    ({}, ["probe"], "no 'probe' block"),
])
def test_bad_blocks_fail_with_one_line(raw, sections, message):
    with pytest.raises(PipelineError) as err:
        params_from_dict(raw, sections)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unloaded_block_is_an_error_not_a_silent_default():
    params = params_from_dict({"seeds": [0]}, ["seeds"])
    with pytest.raises(PipelineError, match="'sparsity' was not loaded"):
        params.sparsity
    with pytest.raises(PipelineError, match="no run seed chosen"):
        params.seed  # a run's seed is chosen explicitly, never defaulted


def test_a_run_seed_is_one_of_seeds_and_shows_in_flat_params_not_the_list():
    params = params_from_dict({"seeds": [3, 4], "sparsity": RAW["sparsity"]}, ["seeds", "sparsity"])
    run = params.for_seed(4)
    assert run.seed == 4 and run.seeds == (3, 4) and params.loaded == run.loaded == ("seeds", "sparsity")
    assert run.flat()["seed"] == 4 and "seeds" not in run.flat()  # adding a seed must not change a run's record
    with pytest.raises(PipelineError, match="seed -1 is invalid"):
        params.for_seed(-1)


def test_every_dataset_has_a_subsets_entry_and_a_display_name():
    # dvc.yaml's prepare stage reads subsets.<dataset>: a dataset without an entry could not be probed.
    assert set(RAW["subsets"]) == set(sources.known())
    assert all(sources.get(name).name and sources.get(name).name != name for name in sources.known())


def test_a_stage_run_without_a_param_stops_before_any_work_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    del raw["pretrain"]["lr"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(REPO), "SPARSEJEPA_MLFLOW": "off"}
    proc = subprocess.run([sys.executable, "-m", "stages.pretrain", "jepa", "fashion_mnist"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: params.yaml has no 'pretrain.lr'; add it to the 'pretrain' block (see the committed params.yaml): "
        "code holds no defaults"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written, nothing half-done


def test_every_named_setting_applies_to_params_yaml_and_prints_dvc_arguments():
    from pipeline import settings

    assert "longer" in settings.known()
    for name in settings.known():
        values = settings.overrides(name, REPO / "params.yaml")  # every key exists and the result validates
        assert values
    assert settings.cli_args({"seeds": [0, 1], "pretrain.epochs": 5, "pretrain.hflip": True}) == [
        "-S", "seeds=[0, 1]", "-S", "pretrain.epochs=5", "-S", "pretrain.hflip=true"]


def test_a_setting_with_a_bad_key_or_value_fails_before_dvc_runs(tmp_path, monkeypatch):
    from pipeline import settings

    monkeypatch.setattr(settings, "FOLDER", tmp_path)
    (tmp_path / "typo.yaml").write_text("pretrain.epoch: 5\n")
    (tmp_path / "bad.yaml").write_text("pretrain.epochs: -1\n")
    with pytest.raises(PipelineError, match="cannot override 'pretrain.epoch'"):
        settings.overrides("typo", REPO / "params.yaml")
    with pytest.raises(PipelineError, match="pretrain.epochs = -1"):
        settings.overrides("bad", REPO / "params.yaml")
    with pytest.raises(PipelineError, match="unknown setting 'nope'; known: bad, typo"):
        settings.overrides("nope", REPO / "params.yaml")


def test_a_check_across_blocks_runs_only_where_a_stage_loads_both():
    # prepare loads data and model (to refuse an image size the encoder cannot patch); a stage with one block
    # cannot judge the pair.
    assert load_params(["data"], REPO / "params.yaml", {"data.image_size": 30}).data.image_size == 30
    with pytest.raises(PipelineError, match="multiple of model.patch_size"):
        load_params(["data", "subsets", "model"], REPO / "params.yaml", {"data.image_size": 30})
