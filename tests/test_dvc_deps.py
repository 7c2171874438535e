"""DVC always knows what a stage reads: dvc.yaml is what `python -m pipeline.dag` writes, every file a
stage's command imports is one of its deps, every param its method reads is declared, and checkpoint
fingerprints hash the same files.

The stages are resolved by DVC itself from dvc.yaml and params.yaml, and their imports are followed
statically (pipeline/core/codebase.py), so a module added to a stage's import graph without
re-generating dvc.yaml fails here instead of leaving a stale output that DVC thinks is fresh.
"""
import shlex
from pathlib import Path

import pytest
from conftest import REPO

from pipeline import dag, methods
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
    every params block it declares (pipeline/config/params.py imports those by name)."""
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
                assert imported.startswith(("pipeline.runtime", "pipeline.core.errors", "pipeline.core.workspace",
                                            "pipeline.core.yamlfile")), \
                    (module, imported)


def declared_blocks(stage: dict) -> set[str]:
    return {key.split(".")[0] for key in stage["params"].get("params.yaml", set())}


def test_committed_dvc_files_are_what_the_generator_writes(tmp_path):
    for under in methods.pipelines():
        assert (REPO / dag.dvc_file(under)).read_text() == dag.render(under), \
            f"{dag.dvc_file(under)} is stale: run `python -m pipeline.dag`"
    assert dag.main(["--check"]) == 0
    # The check can fail: a hand edit (or a registry or import change not yet written) is caught.
    for under in methods.pipelines():
        (tmp_path / dag.dvc_file(under)).parent.mkdir(exist_ok=True)
        (tmp_path / dag.dvc_file(under)).write_text(dag.render(under))
    assert dag.main(["--check"], root=tmp_path) == 0
    (tmp_path / "dvc.yaml").write_text(dag.render(None).replace("- pipeline/core/errors.py\n", "", 1))
    assert dag.main(["--check"], root=tmp_path) == 1
    assert dag.main([], root=tmp_path) == 0 and (tmp_path / "dvc.yaml").read_text() == dag.render(None)


def test_each_method_stage_declares_the_params_its_method_reads_and_not_the_ones_it_fixes(stages):
    for under in methods.pipelines():
        prefix = "" if under is None else f"{dag.dvc_file(under)}:"
        for method in methods.pipeline_methods(under):
            stage = stages[f"{prefix}pretrain-{method.key}"]
            declared = stage["params"]["params.yaml"]
            assert declared_blocks(stage) == {"seeds", *method.params}, method.key
            assert not set(method.fixed) & declared and not {k.split(".")[0] for k in method.fixed} & declared
            # Its registry entry's build and fixed values are params too: editing them re-runs only that method.
            section = methods.section(under)
            assert stage["params"]["pipeline/methods/registry.yaml"] == {
                f"{section}.{method.key}.build", *([f"{section}.{method.key}.fixed"] if method.fixed else [])}
    # `dvc exp run -S sparsity.lambda=...` re-runs only these (the ladder is a pipeline of its own).
    declaring = {name for name, s in stages.items() if ":" not in name and "sparsity" in declared_blocks(s)}
    assert declaring == {f"pretrain-{m.key}" for m in methods.all_methods() if "sparsity" in m.params}


def test_a_rung_that_fixes_lambda_does_not_declare_it(stages):
    fixing = [m for m in methods.pipeline_methods("ladder") if "sparsity.lambda" in m.fixed]
    assert fixing, "the ladder has a rung with lambda fixed (jepa_regions)"
    for method in fixing:
        declared = stages[f"ladder/dvc.yaml:pretrain-{method.key}"]["params"]["params.yaml"]
        assert "sparsity.lambda" not in declared and "sparsity.step_sum" in declared


def test_stages_exist_for_every_registered_method_and_the_pixel_reference(stages):
    for under in methods.pipelines():
        prefix = "" if under is None else f"{dag.dvc_file(under)}:"
        mine = {n.removeprefix(prefix) for n in stages if (":" in n) == bool(prefix) and n.startswith(prefix)}
        for method in methods.pipeline_methods(under):
            assert {f"pretrain-{method.key}", f"extract-{method.key}", f"probe-{method.key}"} <= mine
        assert {"extract-pixels", "probe-pixels", "report"} <= mine
        # Seeds and datasets run inside a method's stages: a stage start costs seconds of imports.
        prepares = len([n for n in mine if n.startswith("prepare@")])
        assert len(mine) == prepares + 3 * len(methods.pipeline_keys(under)) + 3
    ladder = {n.split(":", 1)[1]: s for n, s in stages.items() if n.startswith("ladder/dvc.yaml:")}
    for name, stage in ladder.items():
        assert stage["cmd"].endswith("--under ladder"), name


def test_checkpoint_fingerprint_hashes_exactly_the_pretrain_stage_code(stages):
    method_files = {f"pipeline/methods/{m.module}.py" for u in methods.pipelines() for m in methods.pipeline_methods(u)}
    for method in methods.all_methods():
        stage = stages[f"pretrain-{method.key}"]
        files = codebase.code_files(["stages.pretrain", f"pipeline.methods.{method.module}"])
        assert all(covered(f, stage["deps"]) for f in files)
        own = {f"pipeline/methods/{method.module}.py"}
        # A pretrained method extends JEPA, so JEPA's file is its base; no other method's file is read.
        base = {"pipeline/methods/jepa.py"} if method.pretrained else set()
        assert {str(f) for f in files} & method_files == own | base, method.key
