"""The stage budget: how much a forgetting stage, a control stage or a warm-oracle stage trains on its subset.

The grammar (``ForgetConfig.stage_budget``), parsed once where text enters a config (:func:`parse_budget`):

- ``epochs:N`` — N passes over the stage's subset (the release: ``epochs:1``). Steps per stage then shrink with the
  subset, so a film recorded this way mostly records the step schedule, not the loss of data (docs/forgetting.md).
- ``steps:N`` — exactly N optimiser steps on every stage, so the small subsets are really fitted.
- ``converge`` or ``converge:N`` — epochs until the stage's training loss stops falling (less than 1 % better for
  two epochs in a row), at most N epochs (default 50); hitting the cap is reported, never hidden.
"""

from __future__ import annotations

from know_core.common.errors import ConfigError

pass

BUDGET_HELP = "epochs:N (the release: epochs:1), steps:N (same optimiser steps every stage) or converge[:max epochs]"
BUDGET_KINDS = ("epochs", "steps", "converge")
CONVERGE_CAP = 50  # epochs, when ``converge`` names no cap
MAX_AMOUNT = 10_000_000


class StageBudget:
    """A parsed stage budget (immutable; a value, not a config section). ``text`` is the form it was written in
    (``converge`` and ``converge:50`` are the same budget but two texts): ``str`` and a config's ``to_dict`` give it
    back unchanged, so a recorded config.json (and every hash of one) reads and writes as it did when the budget was
    text. A budget equals another, or a string, with the same text."""

    __slots__ = ("kind", "amount", "text")
    kind: str  # epochs / steps / converge
    amount: int  # epochs, steps, or the converge cap in epochs
    text: str

    def __init__(self, kind: str, amount: int, text: str = "") -> None:
        for name, value in (("kind", kind), ("amount", amount), ("text", text or f"{kind}:{amount}")):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a StageBudget is immutable; parse a new one (cannot set {name})")

    def __reduce__(self) -> tuple:
        return (StageBudget, (self.kind, self.amount, self.text))

    def __repr__(self) -> str:
        return f"StageBudget({self.kind!r}, {self.amount!r}, {self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (StageBudget, str)):
            return self.text == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)  # equal to the hash of the equal string

    def planned_steps(self, n: int, batch: int) -> int:
        """Optimiser steps this budget plans for a subset of ``n`` samples (the cap, for converge)."""
        return self.amount if self.kind == "steps" else self.amount * steps_per_epoch(n, batch)


def parse_budget(text: str | StageBudget) -> StageBudget:
    """``epochs:3`` → StageBudget("epochs", 3); a StageBudget is returned as it is; anything malformed is a
    ConfigError naming the field."""
    if isinstance(text, StageBudget):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"stage_budget must be text like 'steps:200', got {text!r}; allowed: {BUDGET_HELP}")
    kind, _, amount = text.strip().partition(":")
    if kind == "converge" and not amount:
        return StageBudget("converge", CONVERGE_CAP, text)
    if kind not in BUDGET_KINDS:
        raise ConfigError(f"stage_budget {text!r}: unknown kind {kind!r}; allowed: {BUDGET_HELP}")
    try:
        value = int(amount)
    except ValueError:
        raise ConfigError(f"stage_budget {text!r}: {amount!r} is not a whole number; allowed: {BUDGET_HELP}") from None
    if value < 1 or value > MAX_AMOUNT:
        raise ConfigError(f"stage_budget {text!r}: the number must be between 1 and 10,000,000; allowed: {BUDGET_HELP}")
    return StageBudget(kind, value, text)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps of one pass over ``n`` samples in batches of ``batch_size`` (the last batch may be short)."""
    return -(-n // batch_size)
