"""The bootstrap statistics equal values computed here independently (plain loops over index
arrays drawn as the docstring of bettersynth.experiments.stats says, and closed forms).

    python -m pytest tests/experiments/test_exp_stats.py -q
"""

import statistics

import numpy as np
import pytest
from bettersynth.experiments import stats

SEED = 1234
DRAWS = 300


def synthetic(runs: int, questions: int, offset: int, binary: bool) -> np.ndarray:
    """Per-question results of ``runs`` runs: soft scores in thirds, or 0/1 circular correctness."""
    generator = np.random.default_rng(offset)
    if binary:
        return (generator.random((runs, questions)) < 0.4 + 0.05 * offset).astype(float)
    return generator.integers(0, 4, size=(runs, questions)) / 3


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile, written out (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def loop_score(matrix: np.ndarray, runs: np.ndarray, questions: np.ndarray) -> float:
    """mean over the picked runs of the mean over the picked questions, one element at a time."""
    total = 0.0
    for run in runs:
        total += sum(float(matrix[run][question]) for question in questions) / len(questions)
    return total / len(runs)


def test_run_interval_equals_a_direct_loop():
    values = synthetic(1, 40, 0, binary=False)[0]
    got = stats.run_interval({"textvqa": values}, {"textvqa": 1.0}, draws=DRAWS, seed=SEED)
    generator = np.random.default_rng(SEED)
    indices = generator.integers(0, 40, size=(DRAWS, 40))  # the questions are drawn first
    means = [sum(float(values[i]) for i in row) / 40 for row in indices]
    assert got.estimate == pytest.approx(sum(values) / 40)
    assert got.low == pytest.approx(percentile(means, 2.5)) and got.high == pytest.approx(percentile(means, 97.5))
    assert got.low < got.estimate < got.high


def test_weighted_run_interval_of_two_benchmarks():
    text, bench = synthetic(1, 30, 1, binary=False)[0], synthetic(1, 20, 2, binary=True)[0]
    weights = {"textvqa": 0.5 / 0.4, "mmbench_strict": 0.5 / 0.6}
    got = stats.run_interval({"textvqa": text, "mmbench_strict": bench}, weights, draws=DRAWS, seed=SEED)
    generator = np.random.default_rng(SEED)
    text_rows = generator.integers(0, 30, size=(DRAWS, 30))
    bench_rows = generator.integers(0, 20, size=(DRAWS, 20))
    draws = [weights["textvqa"] * sum(text[i] for i in t) / 30
             + weights["mmbench_strict"] * sum(bench[i] for i in b) / 20
             for t, b in zip(text_rows, bench_rows)]
    assert got.estimate == pytest.approx(weights["textvqa"] * text.mean() + weights["mmbench_strict"] * bench.mean())
    assert (got.low, got.high) == pytest.approx((percentile(draws, 2.5), percentile(draws, 97.5)))


def test_paired_comparison_equals_a_direct_loop():
    a = {"textvqa": synthetic(3, 25, 3, binary=False), "mmbench_strict": synthetic(3, 15, 4, binary=True)}
    b = {"textvqa": synthetic(2, 25, 5, binary=False), "mmbench_strict": synthetic(2, 15, 6, binary=True)}
    weights = {"textvqa": 0.5 / 0.45, "mmbench_strict": 0.5 / 0.55}
    got = stats.paired_comparison(a, b, weights, draws=DRAWS, seed=SEED)

    generator = np.random.default_rng(SEED)
    questions = {"textvqa": generator.integers(0, 25, size=(DRAWS, 25)),
                 "mmbench_strict": generator.integers(0, 15, size=(DRAWS, 15))}
    seeds_a = generator.integers(0, 3, size=(DRAWS, 3))
    seeds_b = generator.integers(0, 2, size=(DRAWS, 2))
    differences = []
    for draw in range(DRAWS):
        score_a = sum(w * loop_score(a[k], seeds_a[draw], questions[k][draw]) for k, w in weights.items())
        score_b = sum(w * loop_score(b[k], seeds_b[draw], questions[k][draw]) for k, w in weights.items())
        differences.append(score_a - score_b)
    observed = sum(w * (a[k].mean() - b[k].mean()) for k, w in weights.items())
    assert got.difference == pytest.approx(observed)
    assert got.low == pytest.approx(percentile(differences, 2.5))
    assert got.high == pytest.approx(percentile(differences, 97.5))
    assert got.p_a_better == pytest.approx(sum(d > 0 for d in differences) / DRAWS)
    assert (got.runs_a, got.runs_b, got.draws) == (3, 2, DRAWS)


def test_comparison_closed_forms():
    better = {"textvqa": np.full((2, 10), 0.9)}
    worse = {"textvqa": np.full((3, 10), 0.2)}
    result = stats.paired_comparison(better, worse, {"textvqa": 1.0}, draws=DRAWS, seed=SEED)
    assert (result.difference, result.low, result.high) == pytest.approx((0.7, 0.7, 0.7))
    assert result.p_a_better == 1.0
    same = stats.paired_comparison(worse, worse, {"textvqa": 1.0}, draws=DRAWS, seed=SEED)
    assert same.p_a_better == 0.0  # ties are not "better"


def test_seed_spread_is_mean_and_sample_std():
    group = {"textvqa": synthetic(4, 12, 7, binary=False)}
    spread = stats.seed_spread(group, {"textvqa": 2.0})
    scores = [2.0 * float(np.mean(row)) for row in group["textvqa"]]
    assert spread.mean == pytest.approx(statistics.mean(scores))
    assert spread.std == pytest.approx(statistics.stdev(scores)) and spread.runs == 4
    assert stats.seed_spread({"textvqa": group["textvqa"][:1]}, {"textvqa": 1.0}).std is None


def test_fixed_seed_is_reproducible_and_shapes_are_checked():
    values = {"textvqa": synthetic(1, 20, 8, binary=False)[0]}
    assert stats.run_interval(values, {"textvqa": 1.0}, seed=5) == stats.run_interval(values, {"textvqa": 1.0}, seed=5)
    with pytest.raises(ValueError, match="no per-question values for 'mmbench_strict'"):
        stats.run_interval(values, {"mmbench_strict": 1.0})
    with pytest.raises(ValueError, match="group A has 20 questions, group B 10"):
        stats.paired_comparison({"textvqa": np.ones((1, 20))}, {"textvqa": np.ones((1, 10))}, {"textvqa": 1.0})
