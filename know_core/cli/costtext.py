"""The cost ledger as text for ``report --cost``: one line per method and scale, then what the figures rest on."""

from __future__ import annotations

from typing import Any

from know_core.experiment.cost import break_even_text


def format_cost(ledger: dict[str, Any]) -> str:
    head = (f"{'method':<16}{'scale':>6}{'overhead s':>12}{'cpu s':>9}{'oracle s':>10}{'gain vs naive (95% CI)':>30}"
            f"{'oracle gain':>13}  break-even")
    lines = [f"cost ledger over seeds {', '.join(map(str, ledger['seeds']))} (wall seconds, mean over seeds)", head]
    for r in ledger["rows"]:
        g, ci = r["gain"]
        gain = f"{g:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")
        og = f"{r['oracle_gain'][0]:+.4f}" if r["oracle_gain"] else "-"
        cpu = f"{r['overhead_cpu_s']:.1f}" if r["overhead_cpu_s"] is not None else "-"
        over = f"{r['overhead_s']:.1f}" if r["overhead_s"] is not None else "-"
        oracle = f"{r['oracle_s']:.1f}" if r["oracle_s"] is not None else "-"
        lines.append(f"{r['method']:<16}{'×%g' % r['scale']:>6}{over:>12}{cpu:>9}{oracle:>10}{gain:>30}{og:>13}  "
                     f"{break_even_text(r['break_even'])}")
    if ledger.get("finetune_per_task_s"):
        lines.append(f"one downstream fine-tuning: {ledger['finetune_per_task_s']:.1f} s (wall, mean)")
    lines += ["", "break-even N = (overhead / oracle cost) / (gain / oracle gain): downstream tasks until KNOW's "
              "gains, priced at the oracle's cost per accuracy point, pay for its overhead (docs/cost.md)."]
    trained = {r["method"]: r["meta_training"] for r in ledger["rows"] if r.get("meta_training")}
    if trained:
        lines.append("meta-training: " + "; ".join(f"{m}: {t}" for m, t in trained.items()))
    lines += [f"- {n}" for n in ledger["notes"]]
    return "\n".join(lines)
