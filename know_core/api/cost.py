"""The cost ledger of an experiment for the Cost panel and ``report --cost``: KNOW's overhead, its gain, the oracle's
cost and gain, the break-even (:mod:`know_core.experiment.cost` computes; this module finds the inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from know_core.experiment.cost import break_even_text, cost_table, meta_training_s
from know_core.store.loaders import Damaged, read_json
from know_core.store.schemas import check_results

from ..predictors.known_checkpoint import DEFAULT_CHECKPOINT
from .results import ExperimentResult

STANDARD_REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "standard-results.json"


def known_meta_s(known_checkpoint: dict[str, Any] | None) -> float | None:
    """Seconds the default KNOWN's meta-training took (its card), when ``known_checkpoint`` (a results' record of
    the checkpoint its ``known`` rows used) is the shipped one; None otherwise or without a card."""
    card_path = DEFAULT_CHECKPOINT.with_suffix(".json")
    if not isinstance(known_checkpoint, dict) or not card_path.is_file():
        return None
    try:
        card = read_json(card_path.parent, card_path.name)
    except Damaged:
        return None
    if not isinstance(card, dict) or card.get("sha256") != known_checkpoint.get("sha256"):
        return None
    return meta_training_s(card)


def cost_ledger(result: ExperimentResult | dict[str, Any], meta_uses: float = 1.0) -> dict[str, Any]:
    """The ledger of a finished experiment (typed, or a results.json as read): see
    :func:`know_core.experiment.cost.cost_table`. KNOWN's meta-training is spread over ``meta_uses`` uses."""
    if isinstance(result, ExperimentResult):
        data = {"rows": result.rows, "timings": result.timings}
        checkpoint = result.known_checkpoint
    else:
        data, checkpoint = result, result.get("known_checkpoint")
    return cost_table(data, known_meta_s(checkpoint), meta_uses)


def standard_reference() -> dict[str, Any] | None:
    """The ``standard`` preset's reference run shipped in docs/ (5 seeds, wall timings only), validated; None when
    this installation has no docs folder."""
    if not STANDARD_REFERENCE.is_file():
        return None
    return check_results(read_json(STANDARD_REFERENCE.parent, STANDARD_REFERENCE.name), STANDARD_REFERENCE.name)


__all__ = ["break_even_text", "cost_ledger", "known_meta_s", "standard_reference"]
