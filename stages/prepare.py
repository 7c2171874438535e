"""DVC stage `prepare@<dataset>`: official files -> data/prepared/<dataset>/ (pipeline/data/prepare.py).

Usage, from the repository root: python -m stages.prepare <dataset>
Set SPARSEJEPA_DATA_MIRROR to a folder holding the official files to skip the network.
An interrupted run resumes where it stopped when re-run.
"""
from pipeline import artifacts
from pipeline.core.errors import PipelineError
from pipeline.config.params import load_params
from pipeline.data import sources
from pipeline.data.download import mirror_from_env
from pipeline.data.prepare import prepare
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError(f"usage: python -m stages.prepare <dataset>, with <dataset> one of "
                            f"{', '.join(sources.known())}")
    name = argv[0]
    params = load_params(["data", "subsets", "model"])  # model: its patch size must divide data.image_size
    prepare(name, artifacts.raw_root(), artifacts.prepared_dir(name), params.data.image_size,
            params.subsets.for_dataset(name), mirror_from_env())


if __name__ == "__main__":
    run_stage(main)
