"""The experiment's config and presets: source forgetting run, target task, methods, scales, seeds, controls.

One config system: a preset is an :class:`ExperimentConfig`; CLI flags and the dashboard apply overrides on top, and
the resolved config is saved with the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from know_core.common.errors import ConfigError
from know_core.common.fields import knob
from know_core.common.registry import Entry, Registry
from know_core.data.rotated import held_out_domains
from know_core.engine.config import (
    ForgetConfig,
    OptimConfig,
    PretrainConfig,
    check_int_at_least,
    from_dict,
    to_json,
    with_overrides,
)
from know_core.engine.finetune import FinetuneConfig
from know_core.engine.protocols import DEFAULT_PROTOCOL, apply_protocol, resolve_source
from know_core.experiment.methods import BASELINE, DC_SUFFIX, OFFICIAL, min_stages
from know_core.predictors import available_predictors, default_predictors
from know_core.store.kinds import register_run_kind

PHASES = ("forgetting", "backtest", "retrodiction", "downstream")  # forgetting is always recorded: the rest need it


@dataclass
class ExperimentConfig:
    preset: str = "custom"
    source: ForgetConfig = field(default_factory=ForgetConfig)
    target_dataset: str = knob("digits:5-9", flag="--target",
                               help="the target task: a dataset (classes as in fashion-mnist:5-9), or rotated:DATASET "
                                    "for six rotated domains, one held out (see test_domain)")
    test_domain: str = knob("all", flag="--test-domain",
                            help="with a rotated:DATASET target, the held-out domain: an angle of 0 15 30 45 60 75, or "
                                 "all (each held out in turn, one row set per domain); other targets take only all")
    target_train: int = knob(100, help="images in the data-scarce target training set (class-balanced, seeded)",
                             low=2)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    methods: list[str] = field(default_factory=default_predictors)  # every registered one not opt-in
    official_known: str | None = None  # folder with KNOWN_{Conv,FC,Bias}.h5: adds the method "known-official"
    scales: list[float] = knob(help="scaling factors, powers of 1/r (2 4 8)", factory=lambda: [2.0, 4.0, 8.0])
    seeds: list[int] = knob(help="seeds, one experiment each", factory=lambda: [0])
    oracles: str = "auto"  # auto: where the source pool holds |D0|·scale images; on: required; off
    oracle_budget: str = "converge"  # converge (like Θ0) or steps (Θ0's number of optimisation steps)
    reset_norm: bool = False
    include_embed: bool = knob(False, help="predict positional embeddings and class tokens (ViT) with the fc "
                                           "weights instead of copying them from Θ0")
    drift_correct: bool = knob(False, help="add '<method>+dc': each predictor on the film with the control film's "
                                           "drift removed")
    save_weights: bool = True  # every seed's trajectory, predictions and oracles as safetensors beside the results
    phases: list[str] = field(default_factory=lambda: list(PHASES))  # what each seed measures (a sweep's --what)

    def steps_for(self, scale: float) -> int:
        """k such that scale = (1/r)^k (:meth:`ForgetConfig.steps_of`); scales that are not such powers are refused."""
        return self.source.steps_of(scale)

    def to_json(self) -> str:
        """This config as the canonical JSON text in which it crosses to another process."""
        return to_json(self)

    def validate(self) -> None:
        self.source.validate()
        self.finetune.validate()
        check_int_at_least("target_train", self.target_train, 2)
        held_out_domains(self.target_dataset, self.test_domain)
        if not self.methods:
            raise ConfigError("methods must name at least one predictor")
        unknown = [m for m in self.methods if m not in available_predictors()]
        if unknown:
            raise ConfigError(f"unknown method {unknown[0]!r}; available: {', '.join(available_predictors())}")
        for method in self.methods + ([OFFICIAL] if self.official_known else []):
            if self.source.stages < min_stages(method):
                raise ConfigError(f"source.stages = {self.source.stages} is too short for method {method!r}, which "
                                  f"needs a film of at least {min_stages(method)} stages; raise source.stages or "
                                  f"leave {method} out")
        if not self.scales:
            raise ConfigError("scales must hold at least one scaling factor, e.g. 2 4 8")
        for scale in self.scales:
            self.steps_for(scale)
        if not self.seeds or any(not isinstance(s, int) or not 0 <= s < 2**63 for s in self.seeds) or \
                len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        if self.oracles not in ("auto", "on", "off"):
            raise ConfigError(f"oracles must be auto, on or off, got {self.oracles!r}")
        if self.oracle_budget not in ("converge", "steps"):
            raise ConfigError(f"oracle_budget must be converge or steps, got {self.oracle_budget!r}")
        if not isinstance(self.phases, list) or not self.phases or any(p not in PHASES for p in self.phases):
            raise ConfigError(f"phases must name some of {', '.join(PHASES)}, got {self.phases!r}")
        if self.drift_correct and self.source.warm == "off":
            raise ConfigError("drift_correct needs the control film: set source.warm (oracles) to auto or on")

    @property
    def method_names(self) -> list[str]:
        base = self.methods + ([OFFICIAL] if self.official_known else [])
        return base + ([m + DC_SUFFIX for m in base if m != BASELINE] if self.drift_correct else [])


_PRESETS = Registry("preset", ConfigError)


def register_preset(
    name: str, label: str
) -> Callable[[Callable[[], ExperimentConfig]], Callable[[], ExperimentConfig]]:
    """Decorator adding a preset ``f() -> ExperimentConfig`` under ``name``; its docstring is the help line."""

    def wrap(fn: Callable[[], ExperimentConfig]) -> Callable[[], ExperimentConfig]:
        _PRESETS.add(Entry(name, fn, label, " ".join((fn.__doc__ or "").split()), order=len(_PRESETS.names())))
        return fn

    return wrap


def available_presets() -> dict[str, str]:
    """Preset names, in listing order, with their help line."""
    return {e.name: e.help for e in _PRESETS.entries()}


@register_preset("quick", "Quick (Fashion-MNIST, about a minute)")
def _quick() -> ExperimentConfig:
    """Fashion-MNIST classes 0–4 with a small D0 (1/32 of the pool, ~840 images) as the source task, 100 images of
    classes 5–9 as the target; one seed. Digits cannot show forgetting (docs/forgetting.md); this can, in under a
    minute, with warm oracles up to ×8 for the retrodiction figures (no cold oracles: they would triple the time)."""
    source = ForgetConfig(
        dataset="fashion-mnist:0-4",
        model="simple_cnn",
        r=0.5,
        stages=5,
        d0_fraction=1 / 32,
        optim=OptimConfig(batch_size=32),
        pretrain=PretrainConfig(max_epochs=30, patience=5),
        warm="auto",
    )
    return ExperimentConfig(
        preset="quick",
        source=apply_protocol(source, DEFAULT_PROTOCOL),
        target_dataset="fashion-mnist:5-9",
        target_train=100,
        finetune=FinetuneConfig(epochs=20, batch_size=32),
        oracles="off",
    )


@register_preset("digits", "Digits (live classes, seconds)")
def _digits() -> ExperimentConfig:
    """scikit-learn's 8×8 digits 0–4 (always installed; D0 = a quarter of the pool, ~160 images) → 100 images of the
    digits 5–9; one seed, warm oracles ×2 and ×4, in seconds: for a class or a first look at every page. Digits are
    learnt so easily that the film shows NO forgetting (the verdict says so): running it backwards then undoes
    learning rather than adding knowledge, which is the lesson the quick preset's Fashion-MNIST film contrasts."""
    source = ForgetConfig(
        dataset="digits:0-4",
        model="simple_cnn",
        r=0.5,
        stages=5,
        d0_fraction=0.25,
        optim=OptimConfig(batch_size=8),
        pretrain=PretrainConfig(max_epochs=30, patience=5),
        warm="auto",
    )
    return ExperimentConfig(
        preset="digits",
        source=apply_protocol(source, DEFAULT_PROTOCOL),
        target_dataset="digits:5-9",
        target_train=100,
        finetune=FinetuneConfig(epochs=20, batch_size=32),
        oracles="off",
    )


@register_preset("standard", "Standard (five seeds, real oracles)")
def _standard() -> ExperimentConfig:
    """Fashion-MNIST classes 0–4 → 500 images of the held-out classes 5–9; D0 = 1/8 of the source pool so the
    real ×2/×4/×8 models (cold and warm oracles) can be trained; five seeds."""
    source = ForgetConfig(
        dataset="fashion-mnist:0-4",
        model="simple_cnn",
        r=0.5,
        stages=5,
        d0_fraction=0.125,
        optim=OptimConfig(batch_size=64),
        pretrain=PretrainConfig(max_epochs=40, patience=5),
        warm="on",
    )
    return ExperimentConfig(
        preset="standard",
        source=apply_protocol(source, DEFAULT_PROTOCOL),
        target_dataset="fashion-mnist:5-9",
        target_train=500,
        finetune=FinetuneConfig(epochs=20, batch_size=32),
        seeds=[0, 1, 2, 3, 4],
        oracles="on",
        drift_correct=True,
    )


@register_preset("paper", "Paper (ResNet-18, CIFAR-100 → CIFAR-10, GPU)")
def _paper() -> ExperimentConfig:
    """The release's recipe (ResNet-18, CIFAR-100 → CIFAR-10) for a GPU user with the data under --data-root."""
    return ExperimentConfig(
        preset="paper",
        source=ForgetConfig(
            dataset="cifar100",
            model="resnet18",
            r=0.5,
            stages=5,
            optim=OptimConfig(batch_size=128),
            pretrain=PretrainConfig(max_epochs=200, patience=10),
            protocol="release",
        ),
        target_dataset="cifar10",
        target_train=50_000,
        finetune=FinetuneConfig(recipe="release", epochs=30, head_epochs=10, lr=1e-3, batch_size=128),
        oracles="off",
        reset_norm=True,
    )


@register_preset("dg", "Domain generalisation (rotated MNIST-5k, six held-out domains)")
def _dg() -> ExperimentConfig:
    """The quick preset's source (Fashion-MNIST classes 0–4, D0 = 1/32 of the pool, warm oracles) → DomainBed's
    RotatedMNIST protocol on MNIST-5k: six domains (0°–75°, disjoint shares of the images), 100 training images
    drawn from five of them, tested on the sixth; every domain held out in turn; one seed."""
    cfg = _quick()
    return replace(cfg, preset="dg", target_dataset="rotated:mnist-5k", test_domain="all")


def preset(name: str, **overrides: Any) -> ExperimentConfig:
    """A preset with top-level overrides (``seeds``, ``methods``, ``scales`` …; None: the preset's) applied."""
    return with_overrides(_PRESETS.get(name).factory(), {k: v for k, v in overrides.items() if v is not None})


def resolve_experiment(cfg: ExperimentConfig, protocol: str | None, overrides: dict[str, Any]) -> ExperimentConfig:
    """The one override path of an experiment (CLI flags, ``--set``, the Experiments form): dotted ``overrides``, those
    under ``source.`` with the named ``protocol`` (:func:`~know_core.engine.protocols.resolve_source`); not validated
    (the
    boundary does that once, with :func:`~know_core.experiment.pipeline.preflight_experiment`)."""
    cfg = with_overrides(cfg, overrides)  # every key and value checked here, so a refusal names the full key
    source = {k.removeprefix("source."): v for k, v in overrides.items() if k.startswith("source.")}
    return replace(cfg, source=resolve_source(cfg.source, protocol, source))


def _experiment_config(data) -> ExperimentConfig:
    cfg = from_dict(ExperimentConfig, data)
    cfg.validate()
    return cfg


register_run_kind("experiment", _experiment_config, "a KNOW experiment: every seed's film, predictions and scores")
