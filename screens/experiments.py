"""Experiments page: set up a KNOW experiment (a preset or every option), launch it in the background, watch it."""

from __future__ import annotations

import streamlit as st

from know_core.api import (
    AUGMENTS,
    DEFAULT_PROTOCOL,
    OPTIMIZERS,
    PRETRAIN_UNTIL,
    PROTOCOLS,
    RECIPES,
    WARM_MODES,
    ConfigError,
    KnowError,
    available_datasets,
    available_models,
    available_predictors,
    available_presets,
    describe,
    missing_checkpoints,
    predictor_entry,
    preset,
    start,
)
from screens._common import PAGES, list_runs, md, runs_dir, welcome
from screens._formparts import build_config, field_help, number, protocol_preset
from screens._jobcards import jobs_section
from screens._presentation import prose

PAGE = {"title": "Experiments", "icon": ":material/play_circle:", "order": 10}  # read by screens._routing unrun

st.title("Experiments")
prose(
    "An **experiment** pre-trains a network Θ0 on a source task, makes it *forget* by fine-tuning on nested subsets "
    "D1 ⊃ D2 ⊃ … (each a fraction r of the last), predicts from that trajectory the weights it would have with "
    "×2, ×4, ×8 more data, and fine-tunes every prediction on a small target task. Pick a preset, adjust what you "
    "like and launch: the job runs in the background, survives a page reload and shows up in every browser.")

if not list_runs():
    welcome()


def experiment_form() -> None:
    name = st.selectbox("Preset", list(available_presets()), key="preset",
                        help="quick: Fashion-MNIST 0–4 with a small D0 and warm oracles, about a minute on 2 CPU "
                             "cores; standard: Fashion-MNIST with cold and warm oracles, drift correction and 5 "
                             "seeds, tens of minutes; paper: ResNet-18, "
                             "CIFAR-100 → CIFAR-10, for a GPU with the data on disk; dg: quick's source → rotated "
                             "MNIST-5k, each of six rotations held out in turn, about 6 minutes")
    st.caption(available_presets()[name])
    raw = preset(name)
    names = PROTOCOLS.names()
    protocol = st.selectbox(
        "Forgetting protocol",
        names,
        key=f"protocol-{name}",
        index=names.index(raw.source.protocol if raw.source.protocol in names else DEFAULT_PROTOCOL),
        format_func=lambda p: f"{p} — {PROTOCOLS.get(p).help}",
        help="a named bundle of stage budget, optimiser and pre-training rule; the fields below "
        "start at what it sets, and any field you change marks the run '<protocol>+custom'. "
        "release reproduces the official collector",
    )
    try:
        base = protocol_preset(name, protocol)
    except (KnowError, OSError) as exc:
        st.warning(
            f"The protocol cannot be resolved for this preset's data yet ({exc}); the fields show the preset's "
            "own settings."
        )
        base = raw
    st.caption(describe(base.source))
    src, ft = base.source, base.finetune
    with st.form(f"experiment-{name}-{protocol}"):
        # What a newcomer sets: a name, the data, the methods, the scales and the seeds. Everything else keeps the
        # preset and protocol's values, in the collapsed sections below; Launch and the job's progress follow them.
        v: dict = {}  # dotted config key -> the widget's value
        c1, c2, c3 = st.columns(3)
        run_name = c1.text_input("Run name", value=f"{name} demo")
        v["source.dataset"] = c2.text_input(
            "Source dataset", src.dataset, help=f"one of {', '.join(available_datasets())}; ':0-4' keeps classes 0 to 4"
        )
        v["target_dataset"] = c3.text_input("Target dataset", base.target_dataset, help=field_help("target_dataset"))
        models = list(available_models())
        v["source.model"] = c1.selectbox("Model", models, index=models.index(src.model))
        v["methods"] = c2.multiselect(
            "Methods",
            available_predictors(),
            default=base.methods,
            help="each predicted model is also compared with a norm-matched "
            "shrinkage control (Θ0 scaled to the prediction's norms)",
        )
        with c3:
            scales, seeds = st.columns(2)
            v["scales"] = scales.text_input("Scales (powers of 1/r)", " ".join(f"{s:g}" for s in base.scales))
            v["seeds"] = seeds.text_input("Seeds", " ".join(map(str, base.seeds)))
        with st.expander("Advanced: source task and forgetting"):
            a1, a2 = st.columns(2)
            with a1:
                v["source.r"] = number("source.r", "r (each subset keeps this fraction)", src.r, "%.3f")
                v["source.stages"] = number("source.stages", "S (stages, Θ0 included)", src.stages)
                v["source.d0_fraction"] = number(
                    "source.d0_fraction", "D0 share of the source pool", src.d0_fraction, "%.3f"
                )
                v["source.optim.batch_size"] = st.number_input(
                    "Batch size (0: the dataset's default)", 0, None, src.optim.batch_size or 0
                )
                v["source.optim.lr"] = number("source.optim.lr", "Learning rate", src.optim.lr, "%.5f")
                v["source.pretrain.max_epochs"] = number(
                    "source.pretrain.max_epochs", "Pre-training: max epochs", src.pretrain.max_epochs
                )
                v["source.pretrain.patience"] = number(
                    "source.pretrain.patience", "Pre-training: patience (epochs)", src.pretrain.patience
                )
            with a2:
                v["source.stage_budget"] = st.text_input(
                    "Stage budget",
                    src.stage_budget,
                    help=f"{field_help('source.stage_budget')}. Left as shown it "
                    "follows the protocol (re-resolved for the D0 and batch size above)",
                )
                v["source.optim.optimizer"] = st.selectbox(
                    "Optimizer",
                    OPTIMIZERS,
                    index=OPTIMIZERS.index(src.optim.optimizer),
                    help="adamw: decoupled weight decay",
                )
                v["source.optim.weight_decay"] = number(
                    "source.optim.weight_decay", "Weight decay", src.optim.weight_decay, "%.5f"
                )
                v["source.augment"] = st.selectbox(
                    "Augmentation while training", AUGMENTS, index=AUGMENTS.index(src.augment)
                )
                v["source.pretrain.until"] = st.selectbox(
                    "Θ0 trained until",
                    PRETRAIN_UNTIL,
                    index=PRETRAIN_UNTIL.index(src.pretrain.until),
                    format_func={
                        "val_acc": "validation accuracy stops improving",
                        "plateau": "the training loss plateaus",
                    }.get,
                )
                v["source.carry_optimizer"] = st.checkbox(
                    "Carry the optimiser state",
                    src.carry_optimizer,
                    help="keep Adam's moments from one stage to the next, as the release does",
                )
        with st.expander("Advanced: target task and fine-tuning"):
            a1, a2 = st.columns(2)
            with a1:
                v["test_domain"] = st.text_input(
                    "Held-out domain (rotated: targets)", base.test_domain, help=field_help("test_domain")
                )
                v["target_train"] = number("target_train", "Target training images", base.target_train)
                v["finetune.recipe"] = st.selectbox(
                    "Fine-tune recipe",
                    RECIPES,
                    index=RECIPES.index(ft.recipe),
                    help="simple: all layers, constant lr; release: the official "
                    "script's head + norm warm-up, then all layers with "
                    "cosine decay",
                )
                v["source.device"] = st.selectbox(
                    "Device",
                    ["auto", "cpu", "cuda"],
                    index=["auto", "cpu", "cuda"].index(
                        src.device if src.device in ("auto", "cpu", "cuda") else "auto"
                    ),
                )
            with a2:
                v["finetune.epochs"] = number("finetune.epochs", "Fine-tune epochs", ft.epochs)
                v["finetune.head_epochs"] = number(
                    "finetune.head_epochs", "Head warm-up epochs (release recipe)", ft.head_epochs
                )
                v["finetune.lr"] = number("finetune.lr", "Fine-tune learning rate", ft.lr, "%.5f")
                v["finetune.batch_size"] = number("finetune.batch_size", "Fine-tune batch size", ft.batch_size)
        with st.expander("Advanced: oracles, controls and options"):
            a1, a2 = st.columns(2)
            with a1:
                v["oracles"] = st.selectbox(
                    "Oracles (real larger-data models)",
                    ["auto", "on", "off"],
                    index=["auto", "on", "off"].index(base.oracles),
                )
                v["oracle_budget"] = st.selectbox(
                    "Oracle budget", ["converge", "steps"], index=["converge", "steps"].index(base.oracle_budget)
                )
                v["source.warm"] = st.selectbox(
                    "Warm oracles Θ₋ₖ and the control film",
                    WARM_MODES,
                    index=WARM_MODES.index(src.warm),
                    help="the film continued on real supersets of D0 (the "
                    "retrodiction's ground truth) and Θ0 trained on D0 itself; "
                    "auto: where the pool holds them",
                )
                v["official_known"] = st.text_input(
                    "Official KNOWN folder (optional)",
                    base.official_known or "",
                    help="a folder holding KNOWN_Conv.h5, KNOWN_FC.h5, KNOWN_Bias.h5; adds the method known-official",
                )
            with a2:
                v["drift_correct"] = st.checkbox(
                    "Drift correction (+dc)",
                    base.drift_correct,
                    help="adds '<method>+dc': each predictor also runs on the film with "
                    "the control film's drift removed; needs the control film "
                    "(warm auto or on)",
                )
                v["reset_norm"] = st.checkbox(
                    "Reset normalisation layers",
                    base.reset_norm,
                    help="the release's behaviour; KNOW does not predict normalisation "
                    "layers, and by default they are kept from Θ0",
                )
                v["include_embed"] = st.checkbox(
                    "Predict ViT embeddings",
                    base.include_embed,
                    help="positional embeddings and class tokens: by default copied "
                    "from Θ0 like normalisation layers; included, they are "
                    "predicted with the fc weights",
                )
        submitted = st.form_submit_button("Launch", type="primary", icon=":material/rocket_launch:")
    if submitted:
        try:
            cfg = build_config(base, v, protocol)
        except (ConfigError, KnowError, ValueError) as exc:
            st.error(f"Not launched — {md(exc)}")
            return
        for name in missing_checkpoints(cfg.methods):
            entry = predictor_entry(name)
            st.warning(
                f"The default {entry.title} checkpoint is not there yet, so the method `{name}` will be listed "
                f"as invalid in the results ({entry.trait('makes_checkpoint')} makes it)."
            )
        try:
            run_id = start(cfg, runs_dir(), run_name.strip() or None)
        except KnowError as exc:
            st.error(f"Not launched — {md(exc)}")
            return
        st.session_state["current_run"] = run_id
        st.success(f"Launched **{md(run_name)}** ({run_id}); it runs in the background.")


if list_runs(kind="experiment", status="running"):  # the run happening is the first thing seen (start.sh's demo)
    jobs_section()
    experiment_form()
else:  # otherwise the form first, its job's progress right below Launch
    experiment_form()
    jobs_section()
if list_runs(kind="experiment", status="done"):
    st.page_link(PAGES["trajectory"], label="See the latest finished run's trajectory", icon=":material/scatter_plot:")
