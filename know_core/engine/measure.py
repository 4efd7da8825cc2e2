"""Forgetting measured, not guessed: per-stage figures of a film and a verdict with a noise band from the test set.

Per stage s: source test loss and accuracy, accuracy on the removed samples D0 \\ D_s, the relative step
‖Θ_s − Θ_{s−1}‖ / ‖Θ0‖ and the cosine between successive steps. The verdicts:

- ``forgot`` (loss): a paired t-test over test samples of loss(Θ_{S−1}) − loss(Θ0), one-sided, p < 0.05. The loss is
  what training moves first; a film may forget this way while accuracy holds.
- ``forgot_acc`` (accuracy): McNemar's exact test on the samples Θ0 and Θ_{S−1} disagree about, one-sided.
- ``strength``: the final rise in noise-band units (the t statistic); ``smoothness``: the share of the film's loss
  movement that goes up (1.0 = it rises at every stage).
- "dips and recovers": some intermediate stage rose significantly but the last one did not — a film an endpoint rule
  would misread (e.g. after a learning-rate shock).
- erasure vs overconfidence: whether Θ_{S−1} lost the removed samples (their accuracy fell against Θ0's on the same
  samples) or only grew overconfident (the test loss rose while the removed samples stayed recognised).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from scipy.stats import binomtest, norm, t

ALPHA = 0.05


@dataclass
class ForgettingReport:
    forgot: bool
    forgot_acc: bool
    p_value: float  # loss test, Θ0 vs Θ_{S−1}
    p_value_acc: float
    strength: float  # t statistic of the final loss rise (noise-band units)
    smoothness: float  # in [0, 1]
    pattern: str  # "forgets" / "dips and recovers" / "no forgetting" / "learns"
    kind: str  # "erasure" / "overconfidence" / "" (no forgetting)
    source_acc: list[float]
    source_loss: list[float]
    removed_acc: list[float | None]  # stage 0: nothing removed
    removed_acc_theta0: float | None  # Θ0's accuracy on the samples the last stage removed
    step_rel: list[float | None]  # stage 0: no step
    step_cos: list[float | None]  # stages 0 and 1: no previous step
    stage_p: list[float | None]  # per-stage loss test against Θ0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ForgettingReport":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def verdict(self) -> str:
        loss = " → ".join(f"{v:.3f}" for v in (self.source_loss[0], self.source_loss[-1]))
        acc = " → ".join(f"{v:.3f}" for v in (self.source_acc[0], self.source_acc[-1]))
        if self.pattern == "forgets":
            lost = erased_share(self.removed_acc_theta0, self.removed_acc[-1], self.source_acc[0])
            rem = (f"{self.removed_acc_theta0:.3f} → {self.removed_acc[-1]:.3f}, "
                   f"{min(lost, 1):.0%} of Θ0's edge on them lost")
            how = {
                "erasure": f"erasure: the removed samples were forgotten ({rem})",
                "overconfidence": f"mostly overconfidence, not erasure: the removed samples stay recognised ({rem})",
            }.get(self.kind, "")
            return (
                f"forgetting (p = {self.p_value:.2g}): source test loss rose {loss} "
                f"({self.strength:.1f} noise bands, smoothness {self.smoothness:.2f}); accuracy {acc}"
                f"{' (significant)' if self.forgot_acc else ' (not significant)'}; {how}"
            )
        if self.pattern == "dips and recovers":
            worst = max(range(1, len(self.source_loss)), key=lambda s: self.source_loss[s])
            return (
                f"dips and recovers: the source test loss rose significantly at stage {worst} "
                f"({self.source_loss[0]:.3f} → {self.source_loss[worst]:.3f}) but ended at {self.source_loss[-1]:.3f}"
                f" (p = {self.p_value:.2g}); an endpoint rule would miss this — the film is not clean forgetting"
            )
        if self.pattern == "learns":
            return (
                f"NO forgetting — the film keeps learning: source test loss fell {loss} (accuracy {acc}); Θ0 is "
                "not converged, and running this film backwards would undo learning rather than add knowledge"
            )
        return (
            f"NO forgetting: source test loss {loss}, accuracy {acc}, within the test set's noise "
            f"(p = {self.p_value:.2g}); extrapolating this film backwards has nothing to retrodict"
        )


def paired_loss_test(base: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(t statistic, one-sided p) that ``other``'s per-sample losses are higher than ``base``'s on average."""
    diff = (other - base).double()
    n = len(diff)
    sd = float(diff.std()) if n > 1 else 0.0
    mean = float(diff.mean())
    if sd == 0.0:
        return (1e6 if mean > 0 else 0.0), (0.0 if mean > 0 else 1.0)  # finite: the report is JSON
    stat = mean / (sd / math.sqrt(n))
    p = float(t.sf(stat, n - 1)) if n < 1000 else float(norm.sf(stat))
    return stat, p


def mcnemar_p(base_correct: torch.Tensor, other_correct: torch.Tensor) -> float:
    """One-sided exact McNemar p-value that ``other`` gets more samples wrong than ``base`` does."""
    lost = int((base_correct & ~other_correct).sum())
    gained = int((~base_correct & other_correct).sum())
    if lost + gained == 0:
        return 1.0
    return float(binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue)


def _rel_steps(flat: list[torch.Tensor]) -> tuple[list[float | None], list[float | None]]:
    norm0 = float(torch.linalg.vector_norm(flat[0])) or 1.0
    steps = [None] + [flat[s] - flat[s - 1] for s in range(1, len(flat))]
    rel = [None] + [float(torch.linalg.vector_norm(d)) / norm0 for d in steps[1:]]
    cos: list[float | None] = [None, None]
    for s in range(2, len(flat)):
        a, b = steps[s - 1], steps[s]
        denom = float(torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
        cos.append(float(torch.dot(a, b)) / denom if denom > 0 else None)
    return rel, cos


def smoothness(values: list[float]) -> float:
    """The share of the total movement of ``values`` that goes up: 1.0 rises at every stage, 0.0 only falls."""
    moves = [b - a for a, b in zip(values, values[1:])]
    total = sum(abs(m) for m in moves)
    return sum(m for m in moves if m > 0) / total if total > 0 else 0.0


def erased_share(removed_theta0: float, removed_last: float, test_acc0: float) -> float:
    """How much of Θ0's advantage on its own training samples (over unseen test samples) the removed samples lost:
    0 = still recognised as well as by Θ0, 1 = no better than unseen data. With no such advantage, a fall of more
    than two points counts as fully erased."""
    gap = removed_theta0 - test_acc0
    drop = removed_theta0 - removed_last
    if gap < 0.01:
        return 1.0 if drop > 0.02 else 0.0
    return max(0.0, drop / gap)


def measure_film(
    losses: list[torch.Tensor],
    correct: list[torch.Tensor],
    removed_acc: list[float | None],
    removed_acc_theta0: float | None,
    flat_weights: list[torch.Tensor],
) -> ForgettingReport:
    """The report for a film from per-stage, per-test-sample losses and correctness (stage 0 = Θ0), the accuracy on
    each stage's removed samples, and the flattened predicted weights of every stage."""
    source_loss = [float(v.mean()) for v in losses]
    source_acc = [float(c.double().mean()) for c in correct]
    stage_tests = [None] + [paired_loss_test(losses[0], v) for v in losses[1:]]
    stage_p = [None] + [p for _, p in stage_tests[1:]]
    strength, p_value = stage_tests[-1] if len(losses) > 1 else (0.0, 1.0)
    p_acc = mcnemar_p(correct[0], correct[-1]) if len(correct) > 1 else 1.0
    forgot = p_value < ALPHA
    if forgot:
        pattern = "forgets"
    elif any(p is not None and p < ALPHA for p in stage_p[1:-1]):
        pattern = "dips and recovers"
    elif len(losses) > 1 and paired_loss_test(losses[-1], losses[0])[1] < ALPHA:
        pattern = "learns"
    else:
        pattern = "no forgetting"
    kind = ""
    if forgot and removed_acc[-1] is not None and removed_acc_theta0 is not None:
        kind = "erasure" if erased_share(removed_acc_theta0, removed_acc[-1], source_acc[0]) > 0.5 else "overconfidence"
    rel, cos = _rel_steps(flat_weights)
    return ForgettingReport(
        forgot,
        p_acc < ALPHA,
        p_value,
        p_acc,
        float(strength),
        smoothness(source_loss),
        pattern,
        kind,
        source_acc,
        source_loss,
        removed_acc,
        removed_acc_theta0,
        rel,
        cos,
        stage_p,
    )
