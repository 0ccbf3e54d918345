"""Statistics of a multi-seed comparison (chapter 8): mean and spread per model, the smallest
difference an experiment can detect, and a verdict in one sentence.

``experiments`` re-exports every name here; a result is what ``experiments.run_experiment``
returns (its ``"runs"`` hold one history per model and seed).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

__all__ = ["MODEL_KEYS", "final_accuracies", "summarize", "detectable_difference", "verdict"]

MODEL_KEYS = ("resnet", "resnext")


def final_accuracies(result: dict[str, Any]) -> dict[str, list[float]]:
    """``{"resnet": [final test accuracy of each seed], "resnext": [...]}`` (fractions)."""
    out: dict[str, list[float]] = {key: [] for key in MODEL_KEYS}
    for run in result["runs"]:
        out[run["model"]].append(run["history"][-1]["test_acc"])
    return out


def summarize(accuracies: dict[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per model: ``{"mean", "std", "n"}`` of the final test accuracies (std: sample, n - 1)."""
    summary = {}
    for key, values in accuracies.items():
        values = list(values)
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        summary[key] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
    return summary


def _quantiles(alpha: float, power: float, df: int) -> tuple[float, float]:
    from scipy import stats

    return float(stats.t.ppf(1 - alpha / 2, df)), float(stats.t.ppf(power, df))


def detectable_difference(
    n_test: int, seed_std: float, n_seeds: int, alpha: float = 0.05, power: float = 0.8, *, accuracy: float
) -> float:
    """The smallest difference in mean accuracy between two models (a fraction) that a run of
    ``n_seeds`` seeds per model, tested on ``n_test`` images, detects with probability ``power``
    in a two-sided test at level ``alpha``.

    Each model's mean accuracy over the seeds has two sources of noise: the seed (spread
    ``seed_std`` per run, so ``seed_std**2 / n_seeds`` for the mean) and the finite test set
    (binomial, ``accuracy * (1 - accuracy) / n_test``). The difference of the two means has twice
    that variance, and

        delta = (t_{1 - alpha/2} + t_{power}) * sqrt(2 * (seed_std**2 / n_seeds + p (1 - p) / n_test))

    with Student's t on ``2 (n_seeds - 1)`` degrees of freedom, because ``seed_std`` is itself
    estimated from the seeds. Both models share one test set, so the binomial term overstates
    that part of the noise: the result errs on the cautious side.
    """
    if n_test < 1 or n_seeds < 2:
        raise ValueError(f"need n_test >= 1 and n_seeds >= 2 (a spread); got {n_test} and {n_seeds}")
    if not 0 <= accuracy <= 1 or seed_std < 0:
        raise ValueError(f"accuracy={accuracy} must be a fraction and seed_std={seed_std} non-negative")
    t_alpha, t_power = _quantiles(alpha, power, 2 * (n_seeds - 1))
    variance = 2 * (seed_std**2 / n_seeds + accuracy * (1 - accuracy) / n_test)
    return (t_alpha + t_power) * math.sqrt(variance)


def _standard_error(summary: dict[str, dict[str, float]], n_test: int) -> tuple[float, int]:
    n = min(s["n"] for s in summary.values())
    seed_var = statistics.fmean([s["std"] ** 2 for s in summary.values()])  # pooled
    p = statistics.fmean([s["mean"] for s in summary.values()])
    return math.sqrt(2 * (seed_var / n + p * (1 - p) / n_test)), n


LANGUAGES = ("en", "ko")


def verdict(summary: dict[str, dict[str, float]], n_test: int, alpha: float = 0.05, language: str = "en") -> str:
    """One sentence from the numbers: "cannot tell apart at this scale" when the difference of
    the means is within the two-sided ``alpha`` critical value of its standard error (the same
    noise model as ``detectable_difference``), else which model is ahead and by how much.

    ``language="ko"`` says the same in Korean, with the same numbers in the same format (the
    Korean edition of the book pastes it); the default is English."""
    if language not in LANGUAGES:
        raise ValueError(f"language={language!r}; choose one of {', '.join(LANGUAGES)}")
    se, n = _standard_error(summary, n_test)
    t_alpha, _ = _quantiles(alpha, 0.5, 2 * (n - 1))
    diff = summary["resnext"]["mean"] - summary["resnet"]["mean"]
    within = abs(diff) <= t_alpha * se
    if language == "ko":
        noise = f"시드 {n}개, 테스트 이미지 {n_test:,}장의 잡음 임계값 {100 * t_alpha * se:.2f}포인트"
        gap = f"두 평균의 차이 {100 * abs(diff):.2f}포인트가 {noise}"
        if within:
            return f"{gap} 안에 있어, 이 규모에서는 두 모델을 구별할 수 없습니다"
        leader = "ResNeXt가" if diff > 0 else "ResNet이"
        return f"{gap}를 넘으므로, 테스트 정확도에서 {leader} 앞섭니다"
    points = f"{100 * abs(diff):.2f} points"
    if within:
        return (f"cannot tell apart at this scale: the means differ by {points}, within the "
                f"{100 * t_alpha * se:.2f}-point noise threshold of {n} seeds and {n_test:,} test images")
    leader = "ResNeXt" if diff > 0 else "ResNet"
    return (f"{leader} ahead by {points} of test accuracy, beyond the {100 * t_alpha * se:.2f}-point noise "
            f"threshold of {n} seeds and {n_test:,} test images")
