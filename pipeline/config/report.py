"""The `report` block: the goals the report prints with their verdicts, and SparseJEPA's bounds on its maps."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config.checks import coerce, require
from pipeline.core.errors import PipelineError

SUBJECTS = ("baseline", "best")
OVER = ("raw", "pca", "gaussian", "untrained")  # the pixel controls (artifacts.CONTROLS) and the untrained references
PROBE = re.compile(r"linear|knn|low_label_[1-9][0-9]*")


@dataclass(frozen=True)
class GainGoal:
    """A gain the report must show on the pretraining data: `of`'s target encoder minus `over`, paired by seed,
    on `probe`, at least `points` on average with its 95% interval above 0 (over at least `min_seeds` seeds)."""
    name: str
    of: str      # baseline: the registry's baseline method; best: the pretrained target encoder whose validation
                 # mean on this probe is highest (chosen on validation, read on test)
    probe: str   # linear, knn or low_label_<n> (n labelled images per class)
    over: str    # raw, pca, gaussian (the pixel controls) or untrained (each untrained reference encoder)
    points: float


def gain_goal(name: str, block) -> GainGoal:
    key = f"report.goals.{name}"
    if not isinstance(block, dict) or set(block) != {"of", "probe", "over", "points"}:
        raise PipelineError(f"params.yaml: {key} must be a mapping with exactly the keys of, probe, over and points, "
                            f"got {block!r}")
    goal = GainGoal(name, *(coerce(f"{key}.{k}", block[k], t) for k, t in
                            (("of", str), ("probe", str), ("over", str), ("points", float))))
    require(goal.of in SUBJECTS, f"{key}.of", goal.of, f"one of {', '.join(SUBJECTS)}")
    require(PROBE.fullmatch(goal.probe) is not None, f"{key}.probe", goal.probe, "linear, knn or low_label_<n>")
    require(goal.over in OVER, f"{key}.over", goal.over, f"one of {', '.join(OVER)}")
    require(abs(goal.points) <= 100, f"{key}.points", goal.points, "in [-100, 100] points")
    return goal


@dataclass(frozen=True)
class ReportConfig:
    goals: dict                 # {name: {of, probe, over, points}}, read through `gain_goals`
    goal_min_seeds: int
    non_inferiority_margin: float  # points: "as good as the baseline" = the paired 95% interval's low end above -this
    min_zero_fraction: float
    max_zero_fraction: float
    min_groups_per_latent: float
    max_groups_per_latent: float

    @property
    def gain_goals(self) -> tuple[GainGoal, ...]:
        return tuple(gain_goal(name, block) for name, block in (self.goals or {}).items())

    def validate(self) -> None:
        require(isinstance(self.goals, dict), "report.goals", self.goals, "a mapping of goal names to goals")
        self.gain_goals  # noqa: B018 -- raises on a malformed goal, before any stage runs
        require(self.goal_min_seeds >= 2, "report.goal_min_seeds", self.goal_min_seeds, ">= 2 (an interval needs 2)")
        require(0 < self.non_inferiority_margin <= 100, "report.non_inferiority_margin", self.non_inferiority_margin,
                "in (0, 100] points")
        require(0 <= self.min_zero_fraction <= self.max_zero_fraction <= 1, "report.min_zero_fraction and "
                "max_zero_fraction", (self.min_zero_fraction, self.max_zero_fraction), "in [0, 1], the first not larger")
        require(0 <= self.min_groups_per_latent <= self.max_groups_per_latent, "report.min_groups_per_latent and "
                "max_groups_per_latent", (self.min_groups_per_latent, self.max_groups_per_latent),
                ">= 0, the first not larger")


CONFIG = ReportConfig
