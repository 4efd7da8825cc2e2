"""KNOWN page: what the hyper-model does to a weight's history — editable examples, default vs official networks."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import median

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from know_core.api import (
    BASELINE,
    DEFAULT_CHECKPOINT,
    FROZEN_MODEL,
    GROUPS,
    OFFICIAL_ENV,
    OFFICIAL_FILES,
    KnowError,
    available_predictors,
    fmt,
    frozen_response,
    get_predictor,
    load_transfer,
    method_colour,
    method_label,
    official_known_folder,
    predictor_entry,
    reads_tensors,
    transfer_rows,
)
from screens._common import REPO, md, show_figure
from screens._presentation import prose

PAGE = {"title": "KNOWN", "icon": ":material/neurology:", "order": 60}  # read by screens._routing unrun

COLUMNS = ["θ₋₄ (most forgotten)", "θ₋₃", "θ₋₂", "θ₋₁", "θ0"]
EXAMPLES = pd.DataFrame([
    ["forgetting slows down (exponential)", "conv", 0.0400, 0.0600, 0.0700, 0.0750, 0.0775],
    ["steady drift (linear)", "conv", 0.0200, 0.0300, 0.0400, 0.0500, 0.0600],
    ["no movement", "fc", 0.0500, 0.0500, 0.0500, 0.0500, 0.0500],
    ["overshoot and return", "fc", -0.0100, 0.0300, 0.0150, 0.0220, 0.0200],
    ["large bias, shrinking", "bias", 0.3000, 0.2500, 0.2200, 0.2050, 0.2000],
], columns=["example", "group", *COLUMNS])

st.title("KNOWN")
headline = st.container()  # one sentence on what KNOWN does to these windows, filled once they are predicted
prose(
    "**KNOWN** is a tiny network (9,425 parameters, one per group: conv kernels, fully-connected kernels, biases) that "
    "reads one weight's last five values — most-forgotten first, Θ0 last — and outputs the next value, as if trained "
    "on more data. Edit the sequences below and see what each network answers, and how it continues when its own "
    "predictions are fed back (×2, ×4, ×8). The straight continuation (TaskVector), an exponential fit (ExpFit) and "
    "NiNo's released WNN+ (nino_mlp; each sequence read as a one-weight tensor) are shown for reference.")


@st.cache_resource(show_spinner=False)
def predictor(which: str, folder: str = ""):
    """The predictor, or the reason it cannot be loaded (a missing checkpoint is normal while it is being made)."""
    try:
        if which == "official":
            return get_predictor("known", weights=folder), None
        return get_predictor(which), None
    except (OSError, ValueError) as exc:  # KNOWNWeightsMissing is a FileNotFoundError; a bad file a ValueError
        return None, str(exc)


folder = st.text_input("Folder with the official KNOWN weights (KNOWN_Conv.h5, KNOWN_FC.h5, KNOWN_Bias.h5)",
                       value=official_known_folder() or "", key="known-folder",
                       help="The authors' release carries no licence, so it is never copied into this project; "
                            f"point to where you keep it (the default is ${OFFICIAL_ENV}).")
nets = {"known (default)": predictor("known"),
        "known-official": predictor("official", folder.strip()) if folder.strip() else
        (None, "no folder given")}
c1, c2 = st.columns(2)
for col, (label, (pred, error)) in zip((c1, c2), nets.items()):
    if pred is None:
        col.warning(f"**{label}** unavailable: {error}")
    else:
        col.success(f"**{label}**: {pred.describe()}")

edited = st.data_editor(EXAMPLES, num_rows="dynamic", hide_index=True, width="stretch", key="known-examples",
                        column_config={"group": st.column_config.SelectboxColumn(options=list(GROUPS), required=True),
                                       **{c: st.column_config.NumberColumn(format="%.4f", required=True)
                                          for c in COLUMNS}})
edited = edited.dropna(subset=COLUMNS)
if edited.empty:
    st.info("Add at least one complete sequence (five numbers).")
    st.stop()
bad_group = [g for g in edited["group"] if g not in GROUPS]
if bad_group:
    st.error(f"group: {bad_group[0]!r} is not one of {', '.join(GROUPS)}")
    st.stop()

references = [m for m in available_predictors()  # every other predictor that reads a window of this length
              if m not in (BASELINE, "known") and predictor_entry(m).min_stages <= len(COLUMNS)]
methods = {**{m: predictor(m) for m in references}, **nets}
shown = {m: m if m in nets else method_label(m) for m in methods}  # what a legend or a column calls each
whole = [m for m, (pred, _) in methods.items() if pred is not None and getattr(pred, "whole_model", False)]
if whole:  # NiNo's GNN reads the network's neuron graph: a lone window has no graph to read
    st.caption(md(f"{', '.join(shown[m] for m in whole)} predicts a whole network through its neural graph, so it "
                  "has no answer for one weight's window; its response to a network that never moved is drawn in "
                  "the flat-window chart below, and its rows on a real film are on Compare and Scaling."))
    methods = {m: v for m, v in methods.items() if m not in whole}
table, rollouts = [], {}
for i, row in edited.reset_index(drop=True).iterrows():
    window = torch.tensor([[float(row[c]) for c in COLUMNS]], dtype=torch.float32)
    record = {"example": row.get("example") or f"row {i + 1}", "group": row["group"]}
    for name, (pred, _) in methods.items():
        if pred is None:
            continue
        values = pred.predict(window, 3, row["group"])[0].tolist()
        rollouts[(i, name)] = values
        record[f"{shown[name]}: next"] = values[0]
        record[f"{shown[name]}: Δ"] = values[0] - float(row[COLUMNS[-1]])
    table.append(record)
st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%+.5f") for c in pd.DataFrame(table).columns
                            if ":" in c})



def known_headline(rows: list[dict]) -> str:
    """What the default KNOWN does to the windows on the page, in one sentence, beside the straight continuation."""
    steps = [abs(row["known (default): Δ"]) for row in rows if "known (default): Δ" in row]
    if not steps:
        return ("The default KNOWN network is not available on this machine, so only the reference predictors "
                "continue these windows.")
    text = (f"KNOWN reads a weight's last five values and predicts the next: on these {len(steps)} windows it moves "
            f"θ0 by a median |Δ| of {fmt.num(median(steps))}")
    column = f"{method_label('taskvector')}: Δ"
    straight = [abs(row[column]) for row in rows if column in row]
    return text + (f", where the straight continuation moves it {fmt.num(median(straight))}." if straight else ".")


headline.subheader(md(known_headline(table)), anchor=False)
labels = [t["example"] for t in table]
pick = st.selectbox("Sequence to plot", range(len(labels)), format_func=lambda i: labels[i], key="known-pick")
row = edited.reset_index(drop=True).iloc[pick]
fig = go.Figure(go.Scatter(x=[-4, -3, -2, -1, 0], y=[float(row[c]) for c in COLUMNS], mode="lines+markers",
                           name="window (given)", line=dict(color=method_colour("trajectory"), width=3)))
for name in methods:
    if (pick, name) in rollouts:
        base = name.split(" ")[0]
        fig.add_trace(go.Scatter(x=[0, 1, 2, 3], y=[float(row[COLUMNS[-1]]), *rollouts[(pick, name)]],
                                 mode="lines+markers", name=shown[name],
                                 line=dict(color=method_colour(base), dash="dash" if base == "known" else "dot")))
fig.update_layout(title=f"{labels[pick]}: the window and each predictor's rollout ({row['group']} network)",
                  xaxis=dict(title="step (−4 … 0: the window, most forgotten first; 1, 2, 3: ×2, ×4, ×8 data)",
                             dtick=1), yaxis_title="weight value", height=440)
show_figure(fig, "known-rollout")

st.subheader("Response to a weight that never moved")
st.caption("A flat window θ0·[1, 1, 1, 1, 1] has nothing to extrapolate; an honest predictor returns θ0. The official "
           "networks shrink it instead (Δ ≈ −0.22·θ0 for conv and bias), which is why every prediction is compared "
           "with a norm-matched shrinkage control.")
st.caption(md(f"NiNo reads whole tensors (WNN+) or the whole network (its GNN), so it is asked the way it is asked on "
              f"a run: a film of a freshly initialised {FROZEN_MODEL} (28×28 inputs, the quick preset's network) whose "
              "every weight stayed put for five stages; its Δ per weight is averaged in bins of θ0 (dotted lines)."))
grid = torch.linspace(-0.5, 0.5, 101)
resp = go.Figure()
for group in GROUPS:
    for name, (pred, _) in nets.items():
        if pred is None:
            continue
        delta = pred.predict(grid.unsqueeze(1).repeat(1, 5), 1, group)[:, 0] - grid
        resp.add_trace(go.Scatter(x=grid.tolist(), y=delta.tolist(), name=f"{name} · {group}", mode="lines",
                                  line=dict(dash="solid" if "official" in name else "dash")))
tensor_readers = {m: pred for m in available_predictors() if m not in (BASELINE, "known")
                  for pred in [predictor(m)[0]] if pred is not None and reads_tensors(pred)}


@st.cache_data(show_spinner=False)
def still_film_response(method: str) -> dict:
    return frozen_response(tensor_readers[method])


for name in tensor_readers:
    for group, curve in still_film_response(name).items():
        resp.add_trace(go.Scatter(x=curve["theta0"], y=curve["delta"],
                                  name=f"{method_label(name)} · {group} (still {FROZEN_MODEL})",
                                  mode="lines", line=dict(color=method_colour(name), dash="dot"),
                                  customdata=curve["n"],
                                  hovertemplate=f"{method_label(name)} · {group}<br>θ0 %{{x:.3g}}: Δ %{{y:.3g}} "
                                                "(mean of %{customdata} weights)<extra></extra>"))
if resp.data:
    # "~g" ticks (3e-14, 0.05), never Plotly's SI prefixes, which write 3e-14 as "30f".
    resp.update_layout(title="Predicted step Δ for a flat window, by weight value", height=400,
                       xaxis=dict(title="θ0 (the weight's constant value)", tickformat="~g"),
                       yaxis=dict(title="Δ = θ̂ − θ0", tickformat="~g"))
    show_figure(resp, "known-flat-response")
else:
    st.info("No KNOWN or NiNo network is available to probe.")

def recipe_rows(recipe: dict, prefix: str = "") -> list[dict[str, str]]:
    """The checkpoint card's recipe as (setting, value) rows a person reads: nested settings as "a · b", values as
    set (fmt.setting: 0.001, not 0.00100; lists joined)."""
    rows = []
    for key, value in recipe.items():
        name = f"{prefix}{fmt.label(key)}"
        if isinstance(value, dict):
            rows += recipe_rows(value, f"{name} · ")
        else:
            rows.append({"setting": name, "value": fmt.setting(value)})
    return rows


SPIKE_FACTOR = 3.0  # a validation error above 3× the median is a divergent epoch, drawn at the axis' edge


def metatrain_figure(curves: dict, validation: dict) -> go.Figure:
    """Validation error per epoch, one line per group and input mode. The y axis stops just above the largest value
    within SPIKE_FACTOR × the median (at least 1.05, so 1.0 = keeping θ0 always shows); a spike above it is drawn at
    the edge as ▲ with its value: one divergent epoch no longer flattens every other curve."""
    fig = go.Figure()
    values = sorted(c["val_rel_l1"] for by_mode in curves.values() for curve in by_mode.values() for c in curve
                    if c.get("val_rel_l1") is not None)
    typical = [v for v in values if v <= SPIKE_FACTOR * median(values)] if values else []
    top = max(1.05, 1.1 * max(typical, default=1.0))
    clipped = []
    for group, by_mode in curves.items():
        chosen = validation.get(group, {}).get("mode")
        for mode, curve in by_mode.items():
            pts = [c for c in curve if c.get("val_rel_l1") is not None]
            name = f"{group} · {mode}" + (" (kept)" if mode == chosen else "")
            fig.add_trace(go.Scatter(x=[c["epoch"] for c in pts], y=[min(c["val_rel_l1"], top) for c in pts],
                                     mode="lines", name=name, line=dict(dash="solid" if mode == chosen else "dot"),
                                     customdata=[c["val_rel_l1"] for c in pts],
                                     hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{customdata:.4g}}<extra></extra>"))
            clipped += [(c["epoch"], c["val_rel_l1"], name) for c in pts if c["val_rel_l1"] > top]
    if clipped:
        fig.add_trace(go.Scatter(x=[e for e, _, _ in clipped], y=[top] * len(clipped), mode="markers+text",
                                 name="off the scale (value shown)", marker=dict(symbol="triangle-up", size=11,
                                                                                 color="black"),
                                 text=[fmt.num(v) for _, v, _ in clipped], textposition="bottom center",
                                 hovertext=[f"{n}: epoch {e}, {fmt.num(v)}" for e, v, n in clipped],
                                 hoverinfo="text"))
    low = min(values, default=0.0)
    fig.update_layout(title="Validation error during meta-training (1.0 = no better than keeping θ0)",
                      xaxis_title="epoch", yaxis=dict(title="validation relative L1 error",
                                                      range=[max(low - 0.05 * (top - low), 0), top * 1.03]),
                      height=420)
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dash", width=1))
    return fig


st.subheader("Meta-training of the default network")
card_path = DEFAULT_CHECKPOINT.with_suffix(".json")
if not card_path.is_file():
    st.info(f"No checkpoint card yet ({card_path.relative_to(REPO) if card_path.is_relative_to(REPO) else card_path}): "
            "the default KNOWN has not been meta-trained on this machine. `python -m know_core metatrain` makes it.")
else:
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        st.error(f"The checkpoint card {card_path.name} is unreadable: {exc}")
        card = {}
    curves = card.get("curves", {})
    if curves:
        show_figure(metatrain_figure(curves, card.get("validation", {})), "known-metatrain")
    validation = card.get("validation", {})
    if validation:
        st.dataframe(pd.DataFrame([{"group": g, "input mode": v.get("mode"),
                                    **{f"KNOWN {k}": x for k, x in v.get("known", {}).items()}}
                                   for g, v in validation.items()]), hide_index=True, width="stretch")
    data = card.get("data", {})
    if data:
        st.caption(f"Meta-dataset: {md(data.get('folder', '?'))}.")
    if card.get("recipe"):
        with st.expander("Meta-training recipe", expanded=True):
            st.dataframe(recipe_rows(card["recipe"]), hide_index=True, key="known-recipe",
                         column_config={"setting": st.column_config.Column(width="medium"),
                                        "value": st.column_config.Column(width="large")})
missing = [n for n in OFFICIAL_FILES.values() if folder.strip() and not (Path(folder.strip()) / n).is_file()]
if missing:
    st.caption(f"The folder lacks {', '.join(missing)}.")

st.subheader("Transfer to other architectures (ViT, MLP)")
st.caption("KNOWN learned from CNN and MLP films. On held-out films of a tiny vision transformer (vit_tiny) and of the "
           "MLP, each cell gives the median relative error of the backtest (Θ0 hidden, predicted back; keeping Θ1 = 1) "
           "and against the warm oracle (the film really continued on more data; keeping Θ0 = 1), beside TaskVector, "
           "ExpFit and keeping Θ, then with ViT films added to the meta-dataset. Lower is better. "
           "`python -m know_core report --transfer` prints the same.")
try:
    transfer = load_transfer()
except KnowError as exc:
    st.info(str(exc))
else:
    subset = st.radio("Films", ["all", "forgot"], horizontal=True, key="transfer-subset",
                      format_func=lambda s: "all held-out films" if s == "all" else "films that forgot")
    st.dataframe(pd.DataFrame(transfer_rows(transfer, subset)), hide_index=True, width="stretch",
                 column_config={f: st.column_config.NumberColumn(f, format="%.3f") for f in ("backtest", "warm")})
    st.caption(" · ".join(transfer.get("setup", [])))
