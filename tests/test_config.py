"""params.yaml -> typed config: the committed file parses, bad values fail in one clear line,
and dvc.yaml declares for each stage the params blocks it reads."""
import pytest
import yaml

from conftest import REPO
from pipeline import names, sources
from pipeline.config import SECTIONS, as_dict, load_params, params_from_dict
from pipeline.errors import PipelineError


def test_committed_params_parse_and_round_trip():
    params = load_params(["seed", "subsets", *SECTIONS], REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in SECTIONS:
        assert as_dict(params.section(name)) == {k: v for k, v in raw[name].items()}, name


@pytest.mark.parametrize("raw, sections, message", [
    ({"sparsity": {"lambda": -0.1}}, ["sparsity"], "sparsity.lambda = -0.1 is invalid"),
    ({"sparsity": {"lamda": 0.1}}, ["sparsity"], "unknown key 'sparsity.lamda'"),
    ({"pretrain": {"lr": "fast"}}, ["pretrain"], "pretrain.lr must be a number"),
    ({"pretrain": {"lr": float("nan")}}, ["pretrain"], "pretrain.lr must be finite"),
    ({"pretrain": {"device": "tpu"}}, ["pretrain"], "pretrain.device"),
    ({"pretrain": {"ema": [0.99]}}, ["pretrain"], "pretrain.ema must be a list of 2 values"),
    ({"data": {"pretrain": "cifar100", "probe": ["fashion_mnist"]}}, ["data"], "data.pretrain"),
    ({"model": {"width": 130, "heads": 4}}, ["model"], "divisible by model.heads"),
    ({"seed": 1.5}, ["seed"], "seed must be an integer"),
    ({"subsets": {"cifar100": {"train": -1, "test": 0}}}, ["subsets"], "subsets.cifar100.train = -1 is invalid"),
    ({"subsets": {"cifar100": 500}}, ["subsets"], "subsets.cifar100 must be a mapping with keys train and test"),
    ({"subsets": {"cifar100": {"val": 5}}}, ["subsets"], "subsets.cifar100 must be a mapping"),
    ({"data": {"pretrain": "cifar", "probe": ["cifar"]}}, ["data"], "a list of known datasets (cifar100, clevr_count"),
    ({}, ["probe"], "no 'probe' block"),
])
def test_bad_params_fail_with_one_line_naming_the_key(raw, sections, message):
    with pytest.raises(PipelineError) as err:
        params_from_dict(raw, sections)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unloaded_block_is_an_error_not_a_silent_default():
    params = params_from_dict({"seed": 0}, ["seed"])
    with pytest.raises(PipelineError, match="not loaded"):
        params.section("sparsity")


def test_only_sparse_jepa_stages_declare_sparsity_params():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    pretrain = stages["pretrain"]
    declared = {key: [p if p != "${item.sparse_params}" else item["sparse_params"] for p in pretrain["do"]["params"]]
                for key, item in pretrain["foreach"].items()}
    assert "sparsity" not in declared["jepa"] and "sparsity" in declared["sparse_jepa"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        if name not in ("pretrain",):
            assert not any("sparsity" in str(p) for p in body.get("params", [])), name
        script = body["cmd"].split()[1]
        assert script in body["deps"], f"{name} must depend on its own script {script}"


def test_every_dataset_has_a_subsets_entry_a_display_name_and_its_own_prepare_dep():
    # dvc.yaml's prepare stage reads subsets.<dataset>: a dataset without an entry could not be probed.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(raw["subsets"]) == set(sources.known())
    assert all(names.dataset_name(name) != name for name in sources.known())
    prepare = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["prepare"]["do"]
    assert "pipeline/sources/${item}.py" in prepare["deps"] and "subsets.${item}" in prepare["params"]
