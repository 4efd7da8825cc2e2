"""Films of other tools' checkpoints: real artefacts (torchvision state dicts saved with torch.save in the usual
nestings, safetensors files, transformers save_pretrained folders, sharded or not, and a Trainer's checkpoint-N
folders) imported as runs, predicted, exported in their own layout and loaded back with the library that made them."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

from know_core.cli import main
from know_core.imports.groups import infer_groups
from know_core.models import param_groups
from know_core.store.legacy import read
from know_core.store.runstore import RunStore

transformers = pytest.importorskip("transformers")

STEPS = 3


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_id_of(out: str) -> str:
    return next(line.split()[2] for line in out.splitlines() if line.startswith("stored run "))


def predicted(runs: Path, run_id: str, method: str, k: int) -> dict[str, torch.Tensor]:
    run = RunStore(runs, create=False).open(run_id)
    name = f"pred-{method}.safetensors"
    films, _ = read(*run.read_tensors(name), name, "predictions")
    return films["predictions"][k - 1]


def import_predict_export(capsys, runs: Path, out: Path, paths: list, kind: str, method: str = "taskvector",
                          scale: str = "×4", extra: tuple = (), fmt: tuple = ()) -> tuple[str, dict]:
    code, stdout, err = cli(capsys, "import", *paths, "--kind", kind, "--runs-dir", runs, "--quiet", *extra)
    assert code == 0, err
    run_id = run_id_of(stdout)
    code, _, err = cli(capsys, "predict", "--run", run_id, "--method", method, "--steps", STEPS, "--runs-dir", runs)
    assert code == 0, err
    code, _, err = cli(capsys, "export", "--run", run_id, "--method", method, "--scale", scale, "--out", out,
                       "--runs-dir", runs, *fmt)
    assert code == 0, err
    sidecar = json.loads((out / "know-export.json").read_text())
    assert sidecar["method"] == method and sidecar["scale"] == float(scale.lstrip("×x"))
    return run_id, sidecar


def perturbed_states(model: torch.nn.Module, count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``count`` state dicts of ``model`` along a drift (a stand-in for training, made by the model's own class)."""
    gen = torch.Generator().manual_seed(seed)
    states = []
    for _ in range(count):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=gen))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return states


def small_cnn() -> torch.nn.Module:
    return torchvision.models.shufflenet_v2_x0_5(num_classes=10)


def assert_loads_equal(model: torch.nn.Module, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    model.load_state_dict(state, strict=True)
    got = model.state_dict()
    assert set(expected) <= set(got)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


# --- the group rule -------------------------------------------------------------------------------------------------


def test_the_group_rule_agrees_with_the_products_own_on_a_torchvision_model():
    model = torchvision.models.resnet18(num_classes=10)
    shapes = {n: (tuple(t.shape), t.dtype) for n, t in model.state_dict().items()}
    groups = infer_groups(shapes)
    assert {n: groups[n] for n in param_groups(model)} == param_groups(model)  # the module-type rule, by name alone
    assert groups["bn1.running_mean"] == "norm" and "bn1.num_batches_tracked" not in groups  # carried untouched
    assert groups["layer2.0.downsample.1.weight"] == "norm"  # a BatchNorm named by index only


def test_the_group_rule_on_gpt2_and_overrides_by_pattern(tmp_path):
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    shapes = {n: (tuple(t.shape), t.dtype) for n, t in model.state_dict().items()}
    groups = infer_groups(shapes)
    assert groups["transformer.wte.weight"] == groups["transformer.wpe.weight"] == "embed"
    assert groups["transformer.h.0.attn.c_attn.weight"] == "fc" and groups["transformer.h.0.attn.c_attn.bias"] == "bias"
    assert groups["transformer.h.0.ln_1.weight"] == groups["transformer.ln_f.bias"] == "norm"
    over = infer_groups(shapes, [("transformer.h.*.attn.*", "carry"), ("*.c_attn.bias", "bias")])
    assert "transformer.h.0.attn.c_proj.weight" not in over and over["transformer.h.0.attn.c_attn.bias"] == "bias"


# --- torch.save state dicts in the usual nestings, a torchvision model's film ----------------------------------------


NESTINGS = {
    "plain": (lambda sd, i: sd, ".pt"),
    "state_dict": (lambda sd, i: {"state_dict": sd}, ".pth"),
    "model+epoch": (lambda sd, i: {"model": sd, "epoch": i, "optimizer": {"lr": 0.1}}, ".bin"),
    "ddp prefix": (lambda sd, i: {"module." + k: v for k, v in sd.items()}, ".pt"),
    "lightning": (lambda sd, i: {"state_dict": sd, "epoch": i, "global_step": 10 * i}, ".ckpt"),
}


@pytest.mark.parametrize("nesting", list(NESTINGS))
def test_torch_save_films_round_trip(capsys, tmp_path, nesting):
    wrap, suffix = NESTINGS[nesting]
    folder = tmp_path / "film"
    folder.mkdir()
    states = perturbed_states(small_cnn(), 4)
    for i, sd in enumerate(states):
        torch.save(wrap(sd, i), folder / f"epoch-{i}{suffix}")
    out = tmp_path / "out"
    run_id, sidecar = import_predict_export(capsys, tmp_path / "runs", out, [folder], "forgetting")
    assert sidecar["sources"][0]["sha256"]  # the source files' digests travel with the export
    saved = torch.load(out / f"epoch-0{suffix}", weights_only=True)
    for key in {"state_dict": ["state_dict"], "model+epoch": ["model"], "lightning": ["state_dict"]}.get(nesting, []):
        assert set(saved) == {key}
        saved = saved[key]
    if nesting == "ddp prefix":
        assert all(k.startswith("module.") for k in saved)
        saved = {k[len("module."):]: v for k, v in saved.items()}
    expected = predicted(tmp_path / "runs", run_id, "taskvector", 2)
    assert_loads_equal(small_cnn(), saved, expected)
    assert not torch.equal(expected["conv1.0.weight"], states[0]["conv1.0.weight"])  # moved beyond Θ0
    assert torch.equal(expected["conv1.1.running_mean"], states[0]["conv1.1.running_mean"])  # norm copied


def test_a_safetensors_folder_round_trips_and_training_films_are_stored_latest_first(capsys, tmp_path):
    folder = tmp_path / "film"
    folder.mkdir()
    states = perturbed_states(small_cnn(), 4, seed=1)
    for i, sd in enumerate(states):
        save_file(sd, str(folder / f"ckpt_{i * 100}.safetensors"), metadata={"step": str(i * 100)})
    out = tmp_path / "out"
    run_id, _ = import_predict_export(capsys, tmp_path / "runs", out, [folder], "training", scale="x2")
    film = RunStore(tmp_path / "runs", create=False).open(run_id)
    films, _ = read(*film.read_tensors("trajectory.safetensors"), "t", "trajectory")
    assert torch.equal(films["trajectory"][0]["fc.weight"], states[-1]["fc.weight"])  # Θ0 = the last checkpoint
    expected = predicted(tmp_path / "runs", run_id, "taskvector", 1)
    # taskvector continues the last step: Θ̂_{−1} = 2·Θ_last − Θ_before, i.e. forward along training
    assert torch.allclose(expected["fc.weight"], 2 * states[-1]["fc.weight"] - states[-2]["fc.weight"], atol=1e-6)
    assert_loads_equal(small_cnn(), load_file(str(out / "ckpt_300.safetensors")), expected)  # named as Θ0


# --- Hugging Face: save_pretrained (sharded and not) and a Trainer's checkpoints -------------------------------------


def tiny_gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def test_save_pretrained_folders_round_trip_through_from_pretrained(capsys, tmp_path):
    model = tiny_gpt2()
    paths = []
    for i, _ in enumerate(perturbed_states(model, 4, seed=2)):
        path = tmp_path / f"state{i}"
        model.save_pretrained(path, max_shard_size="20KB" if i == 0 else "50MB")  # Θ0 sharded, the rest one file
        paths.append(path)
    assert (paths[0] / "model.safetensors.index.json").is_file() and (paths[1] / "model.safetensors").is_file()
    out = tmp_path / "out"
    run_id, _ = import_predict_export(capsys, tmp_path / "runs", out, paths, "forgetting", method="expfit",
                                      scale="×8")
    assert (out / "model.safetensors.index.json").is_file()  # Θ0's sharded layout, reproduced
    expected = predicted(tmp_path / "runs", run_id, "expfit", 3)
    loaded = transformers.GPT2LMHeadModel.from_pretrained(out).state_dict()
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name
    assert torch.equal(loaded["lm_head.weight"], expected["transformer.wte.weight"])  # tied, as saved


def test_a_trainer_runs_checkpoints_are_a_training_film(capsys, tmp_path):
    model = tiny_gpt2()
    data = [{"input_ids": torch.randint(0, 100, (16,), generator=torch.Generator().manual_seed(i))} for i in range(8)]
    for row in data:
        row["labels"] = row["input_ids"]
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=4, save_steps=1,
                                          per_device_train_batch_size=4, learning_rate=1e-2, report_to=[],
                                          use_cpu=True, logging_strategy="no", disable_tqdm=True, seed=0)
    transformers.Trainer(model=model, args=args, train_dataset=data).train()
    ckpts = sorted((tmp_path / "trainer").glob("checkpoint-*"))
    assert len(ckpts) == 4 and (ckpts[0] / "optimizer.pt").is_file()  # the Trainer's own state sits beside
    out = tmp_path / "out"
    run_id, sidecar = import_predict_export(capsys, tmp_path / "runs", out, [tmp_path / "trainer"], "training",
                                            fmt=("--format", "hf"))
    assert [s["step"] for s in sidecar["sources"]] == [4, 3, 2, 1]  # by trainer_state.json, latest first
    expected = predicted(tmp_path / "runs", run_id, "taskvector", 2)
    loaded = transformers.GPT2LMHeadModel.from_pretrained(out).state_dict()
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name


# --- bad input: exit 2, one line, nothing recorded -------------------------------------------------------------------


def nothing_recorded(runs: Path) -> bool:
    return not runs.exists() or (not RunStore(runs).list_runs() and
                                 not [p for p in runs.iterdir() if p.name not in ("index.sqlite", ".staging")])


def refused(capsys, runs: Path, *argv) -> str:
    quiet = ("--quiet",) if argv[0] == "import" else ()  # no progress lines: the error is all there is
    code, _, err = cli(capsys, *argv, *quiet, "--runs-dir", runs)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def film_of(folder: Path, states: list[dict], suffix: str = ".pt") -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i, sd in enumerate(states):
        path = folder / f"c{i}{suffix}"
        torch.save(sd, path) if suffix != ".safetensors" else save_file(sd, str(path))
        paths.append(path)
    return paths


def base_states(count: int = 3) -> list[dict[str, torch.Tensor]]:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    return perturbed_states(model, count)


def test_bad_films_are_refused_with_one_line_and_nothing_recorded(capsys, tmp_path):
    runs = tmp_path / "runs"
    imp = ("import", "--kind", "forgetting")
    states = base_states()
    other = [dict(s) for s in states]
    other[2] = {k: v for k, v in other[2].items() if k != "2.bias"}
    assert "'2.bias'" in refused(capsys, runs, *imp, *film_of(tmp_path / "keys", other))
    shaped = [dict(s) for s in states]
    shaped[1]["0.weight"] = torch.zeros(5, 4)
    assert "'0.weight'" in refused(capsys, runs, *imp, *film_of(tmp_path / "shape", shaped))
    assert "at least 2 checkpoints" in refused(capsys, runs, *imp, film_of(tmp_path / "one", states[:1])[0])
    nan = [dict(s) for s in states]
    nan[1]["2.weight"] = nan[1]["2.weight"].clone().fill_(float("nan"))
    assert "NaN" in refused(capsys, runs, *imp, *film_of(tmp_path / "nan", nan, ".safetensors"))
    ints = [{"steps": torch.tensor([i])} for i in range(3)]
    assert "no float tensors" in refused(capsys, runs, *imp, *film_of(tmp_path / "ints", ints))
    pickled = film_of(tmp_path / "pickle", states)
    torch.save({"state_dict": states[0], "args": argparse.Namespace(lr=0.1)}, pickled[0])
    line = refused(capsys, runs, *imp, *pickled)
    assert "weights_only" in line and "never unpickled" in line
    torch.save({"state_dict": states[0], "hparams": argparse.Namespace(lr=0.1)}, tmp_path / "l.ckpt")
    assert "Lightning" in refused(capsys, runs, *imp, tmp_path / "l.ckpt", pickled[1])
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "is empty" in refused(capsys, runs, *imp, tmp_path / "empty.pt", pickled[1])
    os.symlink("/dev/zero", tmp_path / "dev.pt")
    assert "device" in refused(capsys, runs, *imp, tmp_path / "dev.pt", pickled[1])
    assert "No such file" in refused(capsys, runs, *imp, tmp_path / "missing.pt", pickled[1])
    (tmp_path / "nothing").mkdir()
    assert "no checkpoints" in refused(capsys, runs, *imp, tmp_path / "nothing")
    (tmp_path / "g.json").write_text('{"nomatch.*": "fc"}')
    assert "matches no tensor" in refused(capsys, runs, *imp, *film_of(tmp_path / "ok", states), "--groups",
                                          tmp_path / "g.json")
    assert nothing_recorded(runs)


def test_export_refuses_an_unpredicted_scale_and_a_foreign_format(capsys, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "import", *film_of(tmp_path / "f", base_states(4)), "--kind", "forgetting",
                         "--runs-dir", runs)
    assert code == 0, err
    run_id = run_id_of(out)
    assert "no predictions" in refused(capsys, runs, "export", "--run", run_id, "--method", "naive", "--scale", "2",
                                       "--out", tmp_path / "x")
    assert cli(capsys, "predict", "--run", run_id, "--method", "naive", "--steps", "2", "--runs-dir", runs)[0] == 0
    exp = ("export", "--run", run_id, "--method", "naive", "--out", tmp_path / "x")
    assert "×8 was not predicted" in refused(capsys, runs, *exp, "--scale", "×8")
    assert "×3 was not predicted" in refused(capsys, runs, *exp, "--scale", "3")
    assert "Hugging Face source" in refused(capsys, runs, *exp, "--scale", "4", "--format", "hf")
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.tmp-*"))  # nothing half-written


def test_explicit_paths_keep_their_order_and_order_flags_sort_them(capsys, tmp_path):
    paths = film_of(tmp_path / "f", base_states(3))
    for i, path in enumerate(paths):  # file times the other way round from the names
        os.utime(path, (1_000_000 - i, 1_000_000 - i))

    def theta0(*argv) -> str:
        code, out, err = cli(capsys, "import", *argv, "--kind", "forgetting", "--dry-run", "--quiet")
        assert code == 0 and "nothing stored" in out, err
        return next(line for line in out.splitlines() if line.startswith("film:")).split("Θ0 = ")[1].split(",")[0]

    assert theta0(paths[2], paths[0], paths[1]).endswith("c2.pt")  # as given
    assert theta0(paths[2], paths[0], paths[1], "--order", "name").endswith("c0.pt")
    assert theta0(tmp_path / "f", "--order", "mtime").endswith("c2.pt")
    assert theta0(tmp_path / "f", "--reverse").endswith("c2.pt")  # by name (the step in it), then reversed
    assert not (tmp_path / "runs").exists()


def test_runs_show_reads_an_imported_run_back(capsys, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "import", *film_of(tmp_path / "f", base_states(3)), "--kind", "training",
                         "--runs-dir", runs, "--quiet")
    assert code == 0, err
    code, out, err = cli(capsys, "runs", "show", run_id_of(out), "--runs-dir", runs)  # checks every file too
    assert code == 0, err
    assert "A film of 3 imported pt checkpoints (training)" in out and "imported" in out.splitlines()[0]
    assert "Trajectory draws it" in out  # the pages do draw imported films (it once said they did not)
