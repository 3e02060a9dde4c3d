"""Honest aggregation of training runs (issue 12): a figure means what it says.

- A *recipe* is everything about a run that changes its accuracy except the seed: profile label,
  epochs, subsets, batch size, learning rate (and the rest of the optimiser settings), data
  folder, genotype (`recipe_key`).
- Mean +- std is only over `done` runs of one architecture with the same recipe and distinct
  seeds (a seed trained twice counts once: its latest run). Of several recipes, an architecture's
  figure is the one with the most seeds (then the most epochs, then the latest); the others are
  counted, never mixed in.
- The figure says which recipe and how many seeds it is over: `97.10+-0.10 (paper x3)`.
- A run's profile label is what it ran (`profile_label`): `paper` only with the paper settings;
  a paper run on a subset, or with other epochs, is `custom`.
- `next_seeds` picks the seeds a new submission uses when none is given: the lowest not yet used
  by a run of the same architecture and recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from core.schema import DONE

# config fields that do not change what a run measures
NOT_RECIPE = ("seed", "eval_batch_size", "deterministic", "profile")
# config fields a profile label does not depend on (where the images are is not how they are trained)
NOT_PROFILE = ("seed", "eval_batch_size", "deterministic", "profile", "data")
CUSTOM = "custom"


def profile_label(config: Mapping[str, Any]) -> str:
    """The profile a configuration really is: its named profile if every setting matches it, else `custom`."""
    from core.train import PROFILES, TrainConfig

    name = config.get("profile")
    if name not in PROFILES:
        return str(name) if name else CUSTOM
    expected = TrainConfig(**{**PROFILES[name], "profile": name}).to_dict()
    for key, value in expected.items():
        if key in NOT_PROFILE or key not in config:
            continue
        if not _same(config[key], value):
            return CUSTOM
    return str(name)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a == b


def recipe_key(run: Mapping[str, Any]) -> tuple:
    """What must be equal for two runs of one architecture to be seeds of one experiment."""
    config = run.get("config") or {}
    label = profile_label(config) if config else run.get("profile")  # old records may say `paper` for a subset run
    items = tuple(sorted((k, _hashable(v)) for k, v in config.items() if k not in NOT_RECIPE))
    return (label, run.get("epochs", config.get("epochs")), run.get("genotype"), items)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


@dataclass
class SeedGroup:
    """Done runs of one architecture with one recipe, one run per seed."""

    label: str
    epochs: Any
    runs: list[dict] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [float(r["accuracy"]) for r in self.runs]

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float:
        values = self.accuracies
        return sum(values) / len(values)

    @property
    def std(self) -> float:
        """Sample standard deviation (0 for one seed)."""
        values = self.accuracies
        if len(values) < 2:
            return 0.0
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    def text(self, digits: int = 2) -> str:
        """`97.10+-0.10 (paper x3)`; one seed: `96.50 (quick x1)`."""
        spread = f"+-{self.std:.{digits}f}" if self.n > 1 else ""
        return f"{self.mean:.{digits}f}{spread} ({self.label} x{self.n})"


def _stamp(run: Mapping[str, Any]) -> str:
    return str(run.get("finished") or run.get("created") or "")


def seed_groups(runs: Iterable[Mapping[str, Any]]) -> list[SeedGroup]:
    """The done runs with an accuracy (of ONE architecture), grouped by recipe, one run per seed
    (the latest of a seed trained twice); the representative group first (most seeds, then most
    epochs, then latest)."""
    groups: dict[tuple, dict[Any, dict]] = {}
    meta: dict[tuple, tuple[str, Any]] = {}
    for run in runs:
        if run.get("status") != DONE or run.get("accuracy") is None:
            continue
        key = recipe_key(run)
        by_seed = groups.setdefault(key, {})
        seed = run.get("seed", (run.get("config") or {}).get("seed"))
        seed = run.get("id") if seed is None else seed  # unknown seed: the run counts on its own
        old = by_seed.get(seed)
        if old is None or _stamp(run) >= _stamp(old):
            by_seed[seed] = dict(run)
        meta[key] = (str(key[0] or CUSTOM), key[1])
    out = [SeedGroup(meta[k][0], meta[k][1], sorted(v.values(), key=_stamp)) for k, v in groups.items()]
    out.sort(key=lambda g: (g.n, _num(g.epochs), max(_stamp(r) for r in g.runs)), reverse=True)
    return out


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -1.0


def summary(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The architecture's accuracy figure: mean, std, n, recipe label, text and how many other
    recipes were left out; None without a done run."""
    groups = seed_groups(runs)
    if not groups:
        return None
    best = groups[0]
    return {"accuracy": best.mean, "accuracy_std": best.std, "seeds": best.n, "recipe": best.label,
            "epochs": best.epochs, "text": best.text(), "other_recipes": len(groups) - 1,
            "runs": [r["id"] for r in best.runs]}


def next_seeds(runs: Iterable[Mapping[str, Any]], recipe: tuple, count: int) -> list[int]:
    """`count` seeds not used yet by `runs` (of one architecture) with `recipe`, lowest first."""
    used = {r.get("seed") for r in runs if recipe_key(r) == recipe}
    seeds: list[int] = []
    candidate = 0
    while len(seeds) < count:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


__all__ = ["profile_label", "recipe_key", "SeedGroup", "seed_groups", "summary", "next_seeds", "CUSTOM"]
