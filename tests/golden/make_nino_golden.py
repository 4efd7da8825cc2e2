"""Golden vectors for the ``nino_mlp`` predictor, made with NiNo's own code (not part of the product).

It records three tiny forgetting films with know_core (digits; simple_cnn_narrow seeds 0 and 1, simple_cnn
seed 0), then runs each vendored WNN+ checkpoint on them through NiNo's own optimiser wrapper
(``optim.NiNo``: its neural graph, its per-tensor scaling, its model, its unscaling) and stores films and predictions
in ``tests/golden/nino_golden.safetensors``; ``tests/test_nino_golden.py`` checks our re-implementation against it.

It needs NiNo's repository and its extra requirements, which the product never installs. A scratch set-up:

    git clone https://github.com/SamsungSAILMontreal/nino /tmp/nino_src     # or the fetch tool + git archive
    .venv/bin/python -m pip install --target /tmp/nino_deps transformers torch_geometric psutil
    rm -rf /tmp/nino_deps/numpy*          # keep the venv's numpy
    cd /tmp/nino_src && PYTHONPATH=/tmp/nino_src:/tmp/nino_deps:/path/to/this/repo \
        /path/to/this/repo/.venv/bin/python /path/to/this/repo/tests/golden/make_nino_golden.py

Made with NiNo at commit 84fb0cf (torch 2.14, torch_geometric 2.8.1, transformers 5.25).

How NiNo is fed, exactly as in its ``nino_step.py``: the model's parameters are loaded stage by stage in training
order (the film reversed: Θ_{c−1} first, Θ0 last) and ``opt.step(k=k)`` is called after each; after the c-th state
NiNo predicts k steps ahead and writes the prediction into the model. The base optimiser is SGD with lr 0 (it never
sees a gradient), only there because NiNo's wrapper calls it between its own steps.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "nino_golden.safetensors"
FILMS = [("simple_cnn_narrow", 0), ("simple_cnn_narrow", 1), ("simple_cnn", 0)]
CHECKPOINTS = ("nino_mlp", "nino_mlp_h32")
HORIZONS = (1, 2, 3)


def record_film(model: str, seed: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, str]]:
    """A real forgetting film from know_core: digits, r = 0.5, S = 5, one epoch per stage, no oracles."""
    from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
    from know_core.engine.forgetting import run_forgetting

    cfg = ForgetConfig(dataset="digits", model=model, stages=5, seed=seed, warm="off", device="cpu",
                       optim=OptimConfig(batch_size=32), pretrain=PretrainConfig(max_epochs=5, patience=2))
    traj, _ = run_forgetting(cfg)
    return traj.states, traj.groups


def nino_predict(ckpt: Path, net: torch.nn.Module, film: list[dict[str, torch.Tensor]], k: int) -> dict:
    """NiNo's own wrapper on the film (Θ0 first in ``film``): the predicted parameters, by name."""
    from optim import NiNo

    opt = NiNo(base_opt=torch.optim.SGD(net.parameters(), lr=0.0), model=None, ckpt=str(ckpt), period=5,
               max_train_steps=5, nino_device="cpu", message_passing_device="cpu", verbose=0)
    opt.set_model(net)
    ctx = opt.ctx
    assert len(film) >= ctx, (len(film), ctx)
    for state in reversed(film[:ctx]):  # training order: the most-forgotten stage first, Θ0 last
        net.load_state_dict(state)
        opt.step(k=k)
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def main() -> None:
    from know_core.data import load_dataset
    from know_core.models import create_model

    sys.path.insert(0, os.getcwd())  # NiNo's repository (run from its root)
    ds = load_dataset("digits")
    tensors: dict[str, torch.Tensor] = {}
    meta = {"films": str(len(FILMS)), "checkpoints": ",".join(CHECKPOINTS),
            "horizons": ",".join(map(str, HORIZONS))}
    for i, (model, seed) in enumerate(FILMS):
        film, groups = record_film(model, seed)
        net = create_model(model, ds.input_shape, ds.num_classes)
        names = [name for name, _ in net.named_parameters()]
        meta[f"film{i}"] = f"{model} seed {seed}"
        meta[f"film{i}.params"] = ",".join(names)
        meta[f"film{i}.groups"] = ",".join(groups[n] for n in names)
        for s, state in enumerate(film):
            for name in names:
                tensors[f"film{i}/stage{s}/{name}"] = state[name].float().contiguous()
        for ckpt in CHECKPOINTS:
            for k in HORIZONS:
                torch.manual_seed(0)
                pred = nino_predict(REPO / "know_core" / "checkpoints" / f"{ckpt}.pt", net, film, k)
                for name in names:
                    tensors[f"film{i}/{ckpt}/k{k}/{name}"] = pred[name].contiguous()
        print(f"film {i}: {model} seed {seed}, {sum(film[0][n].numel() for n in names)} weights", flush=True)
    save_file(tensors, str(OUT), metadata=meta)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
