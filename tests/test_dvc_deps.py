"""DVC always knows what a stage reads: every file a stage's command imports is one of its deps, every
param block its method reads is declared, and checkpoint fingerprints hash the same files.

The stages are resolved by DVC itself from dvc.yaml, params.yaml and the method registry, and their
imports are followed statically (pipeline/core/codebase.py), so a module added to a stage's import
graph without a dvc.yaml dep fails here instead of leaving a stale output that DVC thinks is fresh.
"""
import shlex
from pathlib import Path

import pytest
from conftest import REPO

from pipeline import methods
from pipeline.core import codebase

# Imports that static analysis cannot see: a stage that loads a module by name from its argument.
DYNAMIC_IMPORTS = {
    "stages.prepare": lambda args: [f"pipeline.data.sources.{args[0]}"],
    "stages.pretrain": lambda args: [f"pipeline.methods.{methods.get(args[0]).module}"],
}


@pytest.fixture(scope="module")
def stages() -> dict:
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    resolved = {}
    with Repo(str(REPO)) as repo:
        for stage in repo.index.stages:
            files = [Path(d.def_path) for d in stage.deps if not isinstance(d, ParamsDependency)]
            params = {Path(d.def_path).name if d.def_path.endswith("params.yaml") else d.def_path: set(d.params)
                      for d in stage.deps if isinstance(d, ParamsDependency)}
            resolved[stage.addressing] = {"cmd": stage.cmd, "deps": files, "params": params}
    return resolved


def entry_modules(stage: dict) -> list[str]:
    """The stage's command module, what it imports by name from its arguments, and the config module of
    every params block it declares (pipeline/core/params.py imports those by name)."""
    words = shlex.split(stage["cmd"])
    assert words[:2] == ["python", "-m"], f"stages run as modules (no sys.path edits): {stage['cmd']}"
    module, args = words[2], words[3:]
    blocks = {key.split(".")[0] for key in stage["params"].get("params.yaml", set())}
    return [module, *DYNAMIC_IMPORTS.get(module, lambda _: [])(args), *(f"pipeline.config.{b}" for b in blocks)]


def covered(path: Path, deps: list[Path]) -> bool:
    return any(path == dep or dep in path.parents for dep in deps)


def test_every_stage_depends_on_every_file_its_command_imports(stages):
    assert stages, "dvc.yaml resolved to no stages"
    missing = {}
    for name, stage in stages.items():
        files = codebase.code_files(entry_modules(stage))
        assert files, name
        uncovered = [str(f) for f in files if not covered(f, stage["deps"])]
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"dvc.yaml deps miss imported files: {missing}"


def test_no_stage_lists_output_neutral_code_or_a_file_that_does_not_exist(stages):
    for name, stage in stages.items():
        for dep in stage["deps"]:
            assert not str(dep).startswith("pipeline/runtime"), (name, dep)
            if str(dep).startswith(("pipeline", "stages")):
                assert (REPO / dep).exists(), (name, dep)


def test_output_neutral_modules_only_run_and_report():
    """pipeline.runtime is exempt from deps and fingerprints: it may import no code that computes."""
    assert codebase.OUTPUT_NEUTRAL == ("pipeline.runtime",)
    for path in sorted((REPO / "pipeline" / "runtime").glob("*.py")):
        module = "pipeline.runtime." + path.stem
        for imported in codebase._direct_imports(path, module):
            if imported.startswith("pipeline"):
                assert imported.startswith(("pipeline.runtime", "pipeline.core.errors")), (module, imported)


def test_each_method_stage_declares_the_params_its_method_reads(stages):
    for method in methods.all_methods():
        stage = stages[f"pretrain@{method.key}"]
        assert set(method.params) <= stage["params"]["params.yaml"], method.key
        # Its registry entry is a param too: editing one method's entry re-runs only that method.
        assert stage["params"]["pipeline/methods/registry.yaml"] == {f"methods.{method.key}"}
    # `dvc exp run -S sparsity.lambda=...` re-runs only these (the ladder is a pipeline of its own).
    declaring = {name for name, s in stages.items() if "sparsity" in s["params"].get("params.yaml", set())
                 and ":" not in name}
    assert declaring == {f"pretrain@{m.key}" for m in methods.all_methods() if "sparsity" in m.params}


def test_stages_exist_for_every_registered_method_and_the_pixel_reference(stages):
    for method in methods.all_methods():
        assert {f"pretrain@{method.key}", f"extract@{method.key}", f"probe@{method.key}"} <= set(stages)
    assert {"extract_pixels", "probe_pixels"} <= set(stages)
    # Seeds and datasets run inside a method's stages: a stage start costs seconds of imports.
    default = [n for n in stages if ":" not in n]  # ladder/dvc.yaml's stages are addressed with their file
    assert len(default) == len([n for n in default if n.startswith("prepare@")]) + 3 * len(methods.keys()) + 3


def test_the_ladder_has_stages_for_each_of_its_methods_and_declares_their_params(stages):
    ladder = {n.split(":", 1)[1]: s for n, s in stages.items() if n.startswith("ladder/dvc.yaml:")}
    assert len(ladder) == 3 * len(methods.ladder_keys()) + 3
    for method in methods.ladder():
        stage = ladder[f"pretrain@{method.key}"]
        assert set(method.params) <= stage["params"]["params.yaml"], method.key
        assert stage["params"]["pipeline/methods/registry.yaml"] == {f"ladder.{method.key}"}
        assert stage["cmd"].endswith("--under ladder") and f"data/ladder/models/{method.key}" not in map(
            str, stage["deps"])


def test_the_ladder_runs_the_default_pipelines_stage_templates():
    """ladder/dvc.yaml repeats dvc.yaml's stage definitions (DVC has no include): written under */ladder and
    over the registry's ladder, they must be the same, or the ladder would miss a dep the default has."""
    import yaml

    default = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    ladder = yaml.safe_load((REPO / "ladder/dvc.yaml").read_text())["stages"]
    assert set(ladder) == set(default) - {"prepare"}

    def as_default(node):
        if isinstance(node, dict):
            return {as_default(k): as_default(v) for k, v in node.items() if k != "wdir"}
        if isinstance(node, list):
            return [as_default(v) for v in node]
        if isinstance(node, str):
            for a, b in ((" --under ladder", ""), ("data/ladder/", "data/"), ("reports/ladder/", "reports/"),
                         ("reports/ladder", "reports"), ("${ladder}", "${methods}"), ("ladder.${key}", "methods.${key}")):
                node = node.replace(a, b)
        return node

    # Only the default report draws the collected lambda sweep (a sweep of the default pipeline's SparseJEPA).
    default["report"]["deps"].remove("reports/sweep")
    for name, stage in ladder.items():
        assert as_default(stage) == default[name], name
        assert (stage.get("do") or stage)["wdir"] == "..", name  # run from the repository root


def test_checkpoint_fingerprint_hashes_exactly_the_pretrain_stage_code(stages):
    for method in methods.all_methods():
        stage = stages[f"pretrain@{method.key}"]
        files = codebase.code_files(["stages.pretrain", f"pipeline.methods.{method.module}"])
        assert all(covered(f, stage["deps"]) for f in files)
        assert Path(f"pipeline/methods/{method.module}.py") in files
        others = {f"pipeline/methods/{m.module}.py" for m in methods.all_methods() if m.module != method.module}
        assert not others & {str(f) for f in files}, "a method's checkpoints must not depend on another's file"
