"""Golden vectors for the ``nino`` predictor (NiNo's GNN, ``nino_no_posw.pt``), made with NiNo's own code.

Not part of the product; the scratch set-up is the one in ``make_nino_golden.py`` (NiNo at commit 84fb0cf, its extra
requirements in a --target folder). Run from NiNo's checkout:

    cd /tmp/nino_src && PYTHONPATH=/tmp/nino_src:/tmp/nino_deps:/path/to/this/repo \\
        /path/to/this/repo/.venv/bin/python /path/to/this/repo/tests/golden/make_nino_gnn_golden.py

Films: the three of ``nino_golden.safetensors`` (simple_cnn_narrow seeds 0 and 1, simple_cnn seed 0; not stored
again) and one ``mlp`` film (digits, seed 0) recorded here. For each film NiNo's own ``optim.NiNo`` builds the neural
graph and its Laplacian positional encodings once (after ``torch.manual_seed(0)``, so the sign draw is the one our
predictor uses); those encodings are stored and handed to NiNo again (``set_model(net, lpe=...)``) for k = 1, 2, 3,
fed as in ``nino_step.py``. NiNo's encodings are not unique on graphs of 100 nodes or more (its eigensolver starts
at random and the eigenvalue 1 is degenerate), so this also measures NiNo's own spread: a second NiNo run with
encodings computed afresh, at k = 1, compared with the first (metadata ``film<i>.nino_spread``: the largest
|difference| per tensor relative to the tensor's largest |value|, and the same for the move θ̂ − θ0).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
FILMS_FROM = REPO / "tests" / "golden" / "nino_golden.safetensors"
OUT = REPO / "tests" / "golden" / "nino_gnn_golden.safetensors"
CKPT = REPO / "know_core" / "checkpoints" / "nino_no_posw.pt"
NEW_FILMS = [("mlp", 0)]
HORIZONS = (1, 2, 3)


def stored_films() -> list[tuple[str, list[dict[str, torch.Tensor]], list[str]]]:
    with safe_open(str(FILMS_FROM), "pt") as f:
        gold, meta = {key: f.get_tensor(key) for key in f.keys()}, f.metadata()
    films = []
    for i in range(int(meta["films"])):
        names = meta[f"film{i}.params"].split(",")
        stages = sorted({int(k.split("/")[1][5:]) for k in gold if k.startswith(f"film{i}/stage")})
        films.append((meta[f"film{i}"], [{n: gold[f"film{i}/stage{s}/{n}"] for n in names} for s in stages], names))
    return films


def record_film(model: str, seed: int) -> list[dict[str, torch.Tensor]]:
    from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
    from know_core.engine.forgetting import run_forgetting

    cfg = ForgetConfig(dataset="digits", model=model, stages=5, seed=seed, warm="off", device="cpu",
                       optim=OptimConfig(batch_size=32), pretrain=PretrainConfig(max_epochs=5, patience=2))
    traj, _ = run_forgetting(cfg)
    return traj.states


def nino(net: torch.nn.Module, lpe: torch.Tensor | None = None, seed: int | None = None):
    from optim import NiNo

    opt = NiNo(base_opt=torch.optim.SGD(net.parameters(), lr=0.0), model=None, ckpt=str(CKPT), period=5,
               max_train_steps=5, nino_device="cpu", message_passing_device="cpu", verbose=0)
    if seed is not None:
        torch.manual_seed(seed)  # the positional encodings' sign draw, right before the graph is built
    opt.set_model(net, lpe=lpe)
    return opt


def nino_predict(net, film, k: int, lpe: torch.Tensor | None) -> dict[str, torch.Tensor]:
    opt = nino(net, lpe=lpe)
    for state in reversed(film[:opt.ctx]):  # training order: the most-forgotten stage first, Θ0 last
        net.load_state_dict(state)
        opt.step(k=k)
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def spread(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> tuple:
    def rel(x, y):
        return float((x.double() - y.double()).abs().max() / y.double().abs().max().clamp_min(1e-30))
    return (max(rel(a[n], b[n]) for n in a), max(rel(a[n] - base[n], b[n] - base[n]) for n in a))


def main() -> None:
    from know_core.data import load_dataset
    from know_core.models import create_model

    sys.path.insert(0, os.getcwd())  # NiNo's repository (run from its root)
    ds = load_dataset("digits")
    films = stored_films()
    for model, seed in NEW_FILMS:
        films.append((f"{model} seed {seed}", record_film(model, seed), None))
    tensors: dict[str, torch.Tensor] = {}
    meta = {"films": str(len(films)), "stored_films": str(len(films) - len(NEW_FILMS)),
            "films_from": FILMS_FROM.name, "horizons": ",".join(map(str, HORIZONS))}
    for i, (label, film, _) in enumerate(films):
        model = label.split()[0]
        net = create_model(model, ds.input_shape, ds.num_classes)
        names = [name for name, _ in net.named_parameters()]
        meta[f"film{i}"] = label
        meta[f"film{i}.params"] = ",".join(names)
        if i >= int(meta["stored_films"]):
            for s, state in enumerate(film):
                for name in names:
                    tensors[f"film{i}/stage{s}/{name}"] = state[name].float().contiguous()
        lpe = nino(net, seed=0).graph.pyg_graph.pos.clone()
        tensors[f"film{i}/lpe"] = lpe.float().contiguous()
        preds = {}
        for k in HORIZONS:
            preds[k] = nino_predict(net, film, k, lpe)
            for name in names:
                tensors[f"film{i}/k{k}/{name}"] = preds[k][name].contiguous()
        again = nino_predict(net, film, 1, None)  # NiNo's own encodings computed afresh
        meta[f"film{i}.nino_spread"] = "%.3e,%.3e" % spread(again, preds[1], film[0])
        print(f"film {i}: {label}, {lpe.shape[0]} nodes, NiNo's own spread {meta[f'film{i}.nino_spread']}",
              flush=True)
    save_file(tensors, str(OUT), metadata=meta)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
