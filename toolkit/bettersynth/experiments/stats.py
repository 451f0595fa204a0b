"""Bootstrap statistics over questions and seeds, with a fixed seed (numpy Generator).

Used by ``bsynth report`` (bettersynth.experiments.report). The data:

- a *benchmark* is a set of questions, each with a per-question value: TextVQA's VQA soft score,
  MMBench's circular correctness (1 when every circular copy of the base question is right, else 0);
- a *group* maps each benchmark name to a matrix ``values[r, j]``: run ``r`` of the group (runs that
  differ only by seed), question ``j`` (the same question order in every run and group);
- a *metric* is a weighted sum of benchmark means, ``weights = {benchmark: w}``: TextVQA accuracy is
  ``{"textvqa": 1}``; the challenge score against a reference with accuracies T and M is
  ``{"textvqa": 0.5 / T, "mmbench_strict": 0.5 / M}`` (the reference is held fixed, not resampled).

The score of a group is ``sum_k w_k * mean over runs and questions of values_k``; of one run, the
same with the run's row alone.

Resampling (``draw_resamples``), for ``B`` draws with ``rng = numpy.random.default_rng(seed)``, in
exactly this order: for each benchmark in the order of ``question_counts``, an index array
``rng.integers(0, n_k, size=(B, n_k))`` (questions drawn with replacement, ``n_k`` per draw); then
for each group in order, ``rng.integers(0, R_g, size=(B, R_g))`` (its runs drawn with replacement,
``R_g`` per draw; all zeros for a single run). Draw ``b`` of a group's score is
``sum_k w_k * mean_{i in seeds[b]} mean_{j in questions_k[b]} values_k[i, j]``. The same question
indices serve every group (the comparison is paired over questions) and every run's resampled seeds
keep all of that run's benchmarks together.

- ``run_interval``: the 95% percentile interval of one run's score: the 2.5th and 97.5th percentiles
  (numpy's default linear interpolation) of its ``B`` resampled scores, questions resampled only.
- ``seed_spread``: mean and sample standard deviation (ddof 1; None for a single run) of the runs'
  scores in a group, no resampling.
- ``paired_comparison``: groups A and B resampled with the same question indices, each its own
  seeds; the observed difference is score(A) - score(B); its 95% interval the percentiles of the
  ``B`` draws of score_b(A) - score_b(B); ``p_a_better`` the share of draws where that difference is
  strictly positive (ties count as not better).

    from bettersynth.experiments.stats import paired_comparison, run_interval
    run_interval({"textvqa": per_question}, {"textvqa": 1.0}).low
    paired_comparison({"textvqa": a_matrix}, {"textvqa": b_matrix}, {"textvqa": 1.0}).p_a_better
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bettersynth.experiments.defaults import BOOTSTRAP_SEED, DRAWS, LEVEL

Group = Mapping[str, np.ndarray]      # benchmark -> values[run, question]
Weights = Mapping[str, float]         # benchmark -> weight of its mean in the metric


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float | None     # sample standard deviation (ddof 1); None for one run
    runs: int


@dataclass(frozen=True)
class Comparison:
    difference: float     # score(A) - score(B)
    low: float
    high: float
    p_a_better: float     # share of draws with score(A) - score(B) > 0
    runs_a: int
    runs_b: int
    draws: int


@dataclass(frozen=True)
class Resamples:
    questions: dict[str, np.ndarray]  # benchmark -> (draws, n_questions) question indices
    seeds: list[np.ndarray]           # per group: (draws, n_runs) run indices


def draw_resamples(question_counts: Mapping[str, int], run_counts: Sequence[int], draws: int, seed: int) -> Resamples:
    """The index arrays of a bootstrap, drawn in the order of the module docstring."""
    rng = np.random.default_rng(seed)
    questions = {name: rng.integers(0, count, size=(draws, count)) for name, count in question_counts.items()}
    return Resamples(questions, [rng.integers(0, runs, size=(draws, runs)) for runs in run_counts])


def run_count(group: Group, weights: Weights) -> int:
    """The number of runs in the group; every benchmark of the metric must have a (runs, questions) matrix."""
    counts = set()
    for name in weights:
        if name not in group:
            raise ValueError(f"no per-question values for {name!r} (have {sorted(group)})")
        if group[name].ndim != 2 or 0 in group[name].shape:
            raise ValueError(f"{name}: expected a non-empty (runs, questions) matrix, got shape {group[name].shape}")
        counts.add(group[name].shape[0])
    if len(counts) != 1:
        raise ValueError(f"the benchmarks of a group have different numbers of runs: {sorted(counts)}")
    return counts.pop()


def score(group: Group, weights: Weights) -> float:
    return float(sum(weight * group[name].mean() for name, weight in weights.items()))


def run_scores(group: Group, weights: Weights) -> np.ndarray:
    """The score of each run of the group."""
    return sum(weight * group[name].mean(axis=1) for name, weight in weights.items())


def resampled_scores(group: Group, weights: Weights, questions: Mapping[str, np.ndarray],
                     seeds: np.ndarray) -> np.ndarray:
    """The group's score in every draw (module docstring)."""
    totals = np.zeros(len(seeds))
    for name, weight in weights.items():
        values = np.asarray(group[name], dtype=float)
        for draw, (picked_runs, picked_questions) in enumerate(zip(seeds, questions[name])):
            totals[draw] += weight * values[picked_runs][:, picked_questions].mean()
    return totals


def percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def run_interval(values: Mapping[str, np.ndarray], weights: Weights, draws: int = DRAWS,
                 seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> Interval:
    """One run's score and its percentile interval over resampled questions; ``values``: benchmark -> (questions,)."""
    group = {name: np.asarray(row, dtype=float)[None, :] for name, row in values.items()}
    run_count(group, weights)
    resamples = draw_resamples({name: group[name].shape[1] for name in weights}, [1], draws, seed)
    low, high = percentiles(resampled_scores(group, weights, resamples.questions, resamples.seeds[0]), level)
    return Interval(score(group, weights), low, high)


def seed_spread(group: Group, weights: Weights) -> Spread:
    run_count(group, weights)
    scores = run_scores(group, weights)
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else None
    return Spread(float(np.mean(scores)), std, len(scores))


def paired_comparison(a: Group, b: Group, weights: Weights, draws: int = DRAWS, seed: int = BOOTSTRAP_SEED,
                      level: float = LEVEL) -> Comparison:
    """A against B, bootstrapped over questions (shared) and over each group's seeds."""
    runs_a, runs_b = run_count(a, weights), run_count(b, weights)
    for name in weights:
        if a[name].shape[1] != b[name].shape[1]:
            raise ValueError(f"{name}: group A has {a[name].shape[1]} questions, group B {b[name].shape[1]}")
    resamples = draw_resamples({name: a[name].shape[1] for name in weights}, [runs_a, runs_b], draws, seed)
    differences = (resampled_scores(a, weights, resamples.questions, resamples.seeds[0])
                   - resampled_scores(b, weights, resamples.questions, resamples.seeds[1]))
    low, high = percentiles(differences, level)
    return Comparison(difference=score(a, weights) - score(b, weights), low=low, high=high,
                      p_a_better=float(np.mean(differences > 0)), runs_a=runs_a, runs_b=runs_b, draws=draws)
