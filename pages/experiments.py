"""Experiments page: set up a KNOW experiment (a preset or every option), launch it in the background, watch it."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from know_core.api import (AUGMENTS, BUDGET_HELP, DEFAULT_CHECKPOINT, DEFAULT_PROTOCOL, OPTIMIZERS, PRETRAIN_UNTIL,
                           PROTOCOLS, RECIPES, WARM_MODES, ConfigError, ExperimentConfig, FinetuneConfig, KnowError,
                           apply_protocol, available_datasets, available_models, available_predictors,
                           available_presets, cancel, describe, preflight_experiment, preset, protocol_config,
                           reconcile, start, watch)
from pages._common import PAGES, list_runs, runs_dir, welcome
from pages._common import md

st.title("Experiments")
st.markdown(
    "An **experiment** pre-trains a network Θ0 on a source task, makes it *forget* by fine-tuning on nested subsets "
    "D1 ⊃ D2 ⊃ … (each a fraction r of the last), predicts from that trajectory the weights it would have with "
    "×2, ×4, ×8 more data, and fine-tunes every prediction on a small target task. Pick a preset, adjust what you "
    "like and launch: the job runs in the background, survives a page reload and shows up in every browser.")

if not list_runs():
    welcome()


def _numbers(field: str, text: str, cast) -> list:
    try:
        values = [cast(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"{field}: write numbers separated by spaces, e.g. 2 4 8 (got {text!r})") from None
    if not values:
        raise ConfigError(f"{field}: give at least one value")
    return values


def _dataset(field: str, name: str) -> str:
    base = name.strip().partition(":")[0]
    if base not in available_datasets():
        raise ConfigError(f"{field}: unknown dataset {base!r}; available: {', '.join(available_datasets())} "
                          "(a class subset is written like digits:0-4)")
    return name.strip()


PROTOCOL_FIELDS = {  # form key -> (protocol_config's argument, the value the protocol set)
    "stage_budget": ("stage_budget", lambda s: s.stage_budget), "optimizer": ("optimizer", lambda s: s.optim.optimizer),
    "weight_decay": ("weight_decay", lambda s: s.optim.weight_decay),
    "carry_optimizer": ("carry_optimizer", lambda s: s.carry_optimizer), "augment": ("augment", lambda s: s.augment),
    "pretrain_until": ("pretrain_until", lambda s: s.pretrain.until), "warm": ("oracles", lambda s: s.warm)}


@st.cache_data(show_spinner=False, max_entries=16)
def protocol_preset(name: str, protocol: str) -> ExperimentConfig:
    """The preset with the protocol applied (resolved for its dataset and D0): the form's defaults."""
    base = preset(name)
    return dataclasses.replace(base, source=apply_protocol(base.source, protocol))


def build_config(base: ExperimentConfig, v: dict, protocol: str) -> ExperimentConfig:
    """The form's values on top of the preset, the protocol re-applied for the chosen data and D0, then every protocol
    field the user changed, exactly as the CLI's flags (``+custom`` marks a changed protocol). Checked once, by the
    engine's preflight (ConfigError names the field); nothing is recorded when it refuses."""
    official = v["official_known"].strip() or None
    if official and not Path(official).is_dir():
        raise ConfigError(f"official KNOWN folder: {official} is not a folder")
    source = dataclasses.replace(
        base.source, dataset=_dataset("source dataset", v["source_dataset"]), model=v["model"], r=float(v["r"]),
        stages=int(v["stages"]), d0_fraction=float(v["d0_fraction"]), device=v["device"],
        optim=dataclasses.replace(base.source.optim, batch_size=int(v["batch_size"]) or None, lr=float(v["lr"])),
        pretrain=dataclasses.replace(base.source.pretrain, max_epochs=int(v["max_epochs"]),
                                     patience=int(v["patience"])))
    source.validate()  # names, ranges and the budget's grammar before the protocol reads the dataset
    v = {**v, "stage_budget": v["stage_budget"].strip()}
    flags = {arg: (v[key] if v[key] != shown(base.source) else None) for key, (arg, shown) in PROTOCOL_FIELDS.items()}
    source = protocol_config(source, argparse.Namespace(protocol=protocol, **flags))
    cfg = dataclasses.replace(
        base, source=source, target_dataset=_dataset("target dataset", v["target_dataset"]),
        target_train=int(v["target_train"]),
        finetune=FinetuneConfig(recipe=v["recipe"], epochs=int(v["ft_epochs"]), head_epochs=int(v["head_epochs"]),
                                lr=float(v["ft_lr"]), batch_size=int(v["ft_batch"])),
        methods=list(v["methods"]), official_known=official,
        scales=_numbers("scales", v["scales"], float), seeds=_numbers("seeds", v["seeds"], int),
        oracles=v["oracles"], oracle_budget=v["oracle_budget"], reset_norm=bool(v["reset_norm"]),
        drift_correct=bool(v["drift_correct"]))
    preflight_experiment(cfg)
    return cfg


def experiment_form() -> None:
    name = st.selectbox("Preset", list(available_presets()), key="preset",
                        help="quick: digits, about a minute on 2 CPU cores; standard: Fashion-MNIST with real "
                             "larger-data models (oracles) and 3 seeds, tens of minutes; paper: ResNet-18, "
                             "CIFAR-100 → CIFAR-10, for a GPU with the data on disk")
    st.caption(available_presets()[name])
    raw = preset(name)
    names = list(PROTOCOLS)
    protocol = st.selectbox("Forgetting protocol", names, key=f"protocol-{name}",
                            index=names.index(raw.source.protocol if raw.source.protocol in names else DEFAULT_PROTOCOL),
                            format_func=lambda p: f"{p} — {PROTOCOLS[p][0]}",
                            help="a named bundle of stage budget, optimiser and pre-training rule; the fields below "
                                 "start at what it sets, and any field you change marks the run '<protocol>+custom'. "
                                 "release reproduces the official collector")
    try:
        base = protocol_preset(name, protocol)
    except (KnowError, OSError) as exc:
        st.warning(f"The protocol cannot be resolved for this preset's data yet ({exc}); the fields show the preset's "
                   "own settings.")
        base = raw
    st.caption(describe(base.source))
    src, ft = base.source, base.finetune
    with st.form(f"experiment-{name}-{protocol}"):
        v: dict = {"run_name": st.text_input("Run name", value=f"{name} demo")}
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**Source task and forgetting**")
            v["source_dataset"] = st.text_input("Source dataset", src.dataset,
                                                help=f"one of {', '.join(available_datasets())}; ':0-4' keeps "
                                                     "classes 0 to 4")
            models = list(available_models())
            v["model"] = st.selectbox("Model", models, index=models.index(src.model))
            v["r"] = st.number_input("r (each subset keeps this fraction)", 0.01, 0.99, float(src.r), 0.05,
                                     format="%.3f")
            v["stages"] = st.number_input("S (stages, Θ0 included)", 2, 20, src.stages)
            v["d0_fraction"] = st.number_input("D0 share of the source pool", 0.001, 1.0, float(src.d0_fraction),
                                               format="%.3f", help="below 1 leaves room for the real ×2/×4/×8 "
                                                                   "models (oracles)")
            v["batch_size"] = st.number_input("Batch size (0: the dataset's default)", 0, 4096,
                                              src.optim.batch_size or 0)
            v["lr"] = st.number_input("Learning rate", 1e-6, 1.0, float(src.optim.lr), format="%.5f")
            v["max_epochs"] = st.number_input("Pre-training: max epochs", 1, 1000, src.pretrain.max_epochs)
            v["patience"] = st.number_input("Pre-training: patience (epochs)", 1, 200, src.pretrain.patience)
            st.markdown("**Forgetting protocol**")
            v["stage_budget"] = st.text_input(
                "Stage budget", src.stage_budget, help=f"training per stage: {BUDGET_HELP}. Left as shown it "
                "follows the protocol (re-resolved for the D0 and batch size above)")
            v["optimizer"] = st.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(src.optim.optimizer),
                                          help="adamw: decoupled weight decay")
            v["weight_decay"] = st.number_input("Weight decay", 0.0, 1.0, float(src.optim.weight_decay),
                                                format="%.5f")
            v["carry_optimizer"] = st.checkbox("Carry the optimiser state across stages (the release)",
                                               src.carry_optimizer)
            v["augment"] = st.selectbox("Augmentation while training", AUGMENTS, index=AUGMENTS.index(src.augment))
            v["pretrain_until"] = st.selectbox(
                "Θ0 trained until", PRETRAIN_UNTIL, index=PRETRAIN_UNTIL.index(src.pretrain.until),
                format_func={"val_acc": "validation accuracy stops improving",
                             "plateau": "the training loss plateaus"}.get)
        with c2:
            st.markdown("**Target task and fine-tuning**")
            v["target_dataset"] = st.text_input("Target dataset", base.target_dataset)
            v["target_train"] = st.number_input("Target training images", 2, 1_000_000, base.target_train)
            v["recipe"] = st.selectbox("Fine-tune recipe", RECIPES, index=RECIPES.index(ft.recipe),
                                       help="simple: all layers, constant lr; release: the official script's "
                                            "head + norm warm-up, then all layers with cosine decay")
            v["ft_epochs"] = st.number_input("Fine-tune epochs", 1, 1000, ft.epochs)
            v["head_epochs"] = st.number_input("Head warm-up epochs (release recipe)", 0, 100, ft.head_epochs)
            v["ft_lr"] = st.number_input("Fine-tune learning rate", 1e-6, 1.0, float(ft.lr), format="%.5f")
            v["ft_batch"] = st.number_input("Fine-tune batch size", 1, 4096, ft.batch_size)
            v["device"] = st.selectbox("Device", ["auto", "cpu", "cuda"], index=["auto", "cpu", "cuda"].index(
                src.device if src.device in ("auto", "cpu", "cuda") else "auto"))
        with c3:
            st.markdown("**Predictors and controls**")
            v["methods"] = st.multiselect("Methods", available_predictors(), default=base.methods,
                                          help="each predicted model is also compared with a norm-matched "
                                               "shrinkage control (Θ0 scaled to the prediction's norms)")
            v["official_known"] = st.text_input("Official KNOWN folder (optional)", base.official_known or "",
                                                help="a folder holding KNOWN_Conv.h5, KNOWN_FC.h5, KNOWN_Bias.h5; "
                                                     "adds the method known-official")
            v["scales"] = st.text_input("Scales (powers of 1/r)", " ".join(f"{s:g}" for s in base.scales))
            v["seeds"] = st.text_input("Seeds", " ".join(map(str, base.seeds)))
            v["oracles"] = st.selectbox("Oracles (real larger-data models)", ["auto", "on", "off"],
                                        index=["auto", "on", "off"].index(base.oracles))
            v["oracle_budget"] = st.selectbox("Oracle budget", ["converge", "steps"],
                                              index=["converge", "steps"].index(base.oracle_budget))
            v["warm"] = st.selectbox("Warm oracles Θ_{−k} and the control film", WARM_MODES,
                                     index=WARM_MODES.index(src.warm),
                                     help="the film continued on real supersets of D0 (the retrodiction's ground "
                                          "truth) and Θ0 trained on D0 itself; auto: where the pool holds them")
            v["drift_correct"] = st.checkbox("Drift correction (adds '<method>+dc')", base.drift_correct,
                                             help="each predictor also runs on the film with the control film's "
                                                  "drift removed; needs the control film (warm auto or on)")
            v["reset_norm"] = st.checkbox("Reset normalisation layers (the release's behaviour)", base.reset_norm,
                                          help="KNOW does not predict normalisation layers; by default they are "
                                               "kept from Θ0")
        submitted = st.form_submit_button("Launch", type="primary", icon=":material/rocket_launch:")
    if submitted:
        try:
            cfg = build_config(base, v, protocol)
        except (ConfigError, KnowError, ValueError) as exc:
            st.error(f"Not launched — {md(exc)}")
            return
        if "known" in cfg.methods:
            if not DEFAULT_CHECKPOINT.is_file():
                st.warning("The default KNOWN checkpoint is not there yet, so the method `known` will be listed as "
                           "invalid in the results (`python -m know_core metatrain` makes it).")
        try:
            run_id = start(cfg, runs_dir(), v["run_name"].strip() or None)
        except KnowError as exc:
            st.error(f"Not launched — {md(exc)}")
            return
        st.session_state["current_run"] = run_id
        st.success(f"Launched **{md(v['run_name'])}** ({run_id}); it runs in the background.")


def _phase_table(phases: list[dict]) -> pd.DataFrame:
    now = time.time()
    return pd.DataFrame([{"phase": p["phase"], "steps": f"{p['done']}/{p['total']}",
                          "seconds": round((p["ended"] or now) - p["started"], 1)} for p in phases])


def job_card(p: dict) -> None:
    status = p["status"]
    with st.container(border=True):
        head, button = st.columns([5, 1])
        head.markdown(f"**{md(p['name'])}** · `{p['run_id']}` · **{status}**")
        if status == "running":
            frac = float(p.get("fraction") or 0.0)
            seeds = f"seed {min(p.get('seeds_done', 0) + 1, p.get('seeds_total', 1))} of {p.get('seeds_total', 1)}"
            st.progress(frac, text=f"overall ≈ {frac:.0%} · {seeds}")
            total = max(int(p.get("total") or 0), 1)
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in (p.get("metrics") or {}).items())
            st.progress(min(int(p.get("done") or 0) / total, 1.0),
                        text=f"{p.get('phase')}: {p.get('done')}/{p.get('total')} steps" + (f" · {metrics}"
                                                                                           if metrics else ""))
            if p.get("cancel_requested"):
                button.caption("cancelling…")
            elif button.button("Cancel", key=f"cancel-{p['run_id']}", icon=":material/stop_circle:"):
                try:
                    cancel(runs_dir(), p["run_id"])
                except KnowError as exc:
                    st.error(str(exc))
                st.rerun(scope="fragment")
        elif status == "done":
            st.caption("Finished: see it on the Trajectory, Compare and Scaling pages.")
        else:
            st.caption(md(p.get("error") or ""))
        if p.get("phases"):
            with st.expander("Stages so far"):
                st.dataframe(_phase_table(p["phases"]), hide_index=True, width="stretch")


def jobs_panel() -> None:
    try:
        reconcile(runs_dir())
        runs = list_runs(kind="experiment")[:8]
        reports = [watch(runs_dir(), r.id) for r in runs]
    except KnowError as exc:
        st.error(f"Cannot read the jobs: {md(exc)}")
        return
    running = [p for p in reports if p["status"] == "running"]
    if st.session_state.get("jobs_running") and not running:
        st.session_state["jobs_running"] = False
        st.rerun(scope="app")  # a job just ended: refresh the whole page (and stop polling)
    st.session_state["jobs_running"] = bool(running)
    if not reports:
        st.caption("No experiment launched yet.")
    for p in reports:
        job_card(p)


experiment_form()
st.subheader("Jobs")
st.caption("Live: refreshed every second while a job runs. Jobs keep running when you close the page.")
has_running = bool(list_runs(kind="experiment", status="running"))
st.session_state["jobs_running"] = has_running
st.fragment(run_every=1.0 if has_running else None)(jobs_panel)()
if list_runs(kind="experiment", status="done"):
    st.page_link(PAGES["trajectory"], label="See the latest finished run's trajectory", icon=":material/scatter_plot:")
