"""The groups table: SparseJEPA's pretraining facts per trial, and their paired differences to a reference trial."""
import pandas as pd
import pytest

from pipeline.bench import groups_table
from pipeline.core.errors import PipelineError


def _records() -> pd.DataFrame:
    rows = []
    for seed, (real, shuffled) in enumerate(((1.2, 3.0), (1.4, 3.4), (1.0, 3.2))):
        for trial, used, change in (("centre", real, ""), ("random", shuffled, '{"sparsity.regions": "random"}')):
            rows.append({"trial": trial, "seed": seed, "overrides": change, "zero_fraction": 0.5,
                         "groups_per_latent": used / 2, "groups_per_used_latent": used, "support_stable_steps": 40})
    return pd.DataFrame(rows)


def test_each_trial_gets_its_facts_over_seeds_and_its_paired_difference_to_the_reference(tmp_path):
    md = groups_table.table_md(_records(), "centre", 4)
    lines = md.splitlines()
    assert lines[0].startswith("| trial | change | seeds | zero columns (%) |")
    centre = next(l for l in lines if l.startswith("| centre "))
    random = next(l for l in lines if l.startswith("| random "))
    assert "| 50.00 ± 0.00 |" in centre and "| 1.20 ± 0.20 |" in centre and centre.endswith("| — | — |")
    assert "| 2.13 ± 0.00 |" in centre  # independent links at 50% zero: 4 * 0.5 / (1 - 0.5^4)
    assert "survival ~ init norm" not in lines[0]  # a fact the records lack gets no column
    with_r = groups_table.table_md(_records().assign(init_survival_r=0.1), "centre", 4)
    assert "| survival ~ init norm (r) |" in with_r.splitlines()[0] and "| 0.10 ± 0.00 |" in with_r
    assert "`sparsity.regions: random`" in random and "| 3.20 ± 0.20 |" in random
    # random - centre per seed: 1.8, 2.0, 2.2 -> +2.00, its t interval above 0
    assert "+2.00 [+1.50, +2.50], higher |" in random
    path = tmp_path / "control.csv"
    _records().to_csv(path, index=False)
    groups_table.main([str(path), "centre"])
    assert (tmp_path / "control_table.md").read_text() == md + "\n"
    with pytest.raises(PipelineError, match="no trial 'quadrants'"):
        groups_table.main([str(path), "quadrants"])


def test_independent_links_give_all_groups_when_none_is_cut_and_one_when_almost_all_are():
    assert groups_table.independent_groups(0.0, 4) == 4.0
    assert groups_table.independent_groups(0.999, 4) == pytest.approx(1.0, abs=0.01)
    assert groups_table.independent_groups(1.0, 4) == 0.0
