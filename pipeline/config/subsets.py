"""The `subsets` block: images kept per class of each dataset's splits."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import PipelineError
from pipeline.config.checks import coerce, require


@dataclass(frozen=True)
class SubsetSpec:
    """Images kept per class of one dataset's splits (0 = all); a class with fewer keeps all it has."""
    train: int
    test: int


@dataclass(frozen=True)
class Subsets:
    """subsets.<dataset>.{train,test}, one entry per dataset."""
    per_dataset: dict[str, SubsetSpec]

    def for_dataset(self, name: str) -> SubsetSpec:
        if name not in self.per_dataset:
            raise PipelineError(f"params.yaml has no 'subsets.{name}' entry; add `{name}: {{train: 0, test: 0}}` "
                                f"under subsets (0 keeps every image)")
        return self.per_dataset[name]


def from_raw(block) -> Subsets:
    if not isinstance(block, dict):
        raise PipelineError("params.yaml: 'subsets' must map dataset names to {train: N, test: M}")
    per_dataset = {}
    for name, spec in block.items():
        if not isinstance(spec, dict) or set(spec) != {"train", "test"}:
            raise PipelineError(f"params.yaml: subsets.{name} must be a mapping with keys train and test "
                                f"(images per class, 0 = all), got {spec!r}")
        counts = {split: coerce(f"subsets.{name}.{split}", n, int) for split, n in spec.items()}
        for split, n in counts.items():
            require(n >= 0, f"subsets.{name}.{split}", n, "an integer >= 0 (0 keeps all)")
        per_dataset[name] = SubsetSpec(**counts)
    return Subsets(per_dataset)
