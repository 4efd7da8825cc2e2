"""Hostile input, table-driven per failure class of issue 11: a healthy store is damaged one way per case, and the
damaged run must be reported ("damaged"/"failed" with the reason, or one `error:` line and exit 2) while the
healthy runs beside it stay listed and usable. Pages are checked in test_hostile_pages.py; kill -9 and disk-full
cases in test_hostile_process.py."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from hostile_helpers import build_store, clone, edit_json, retensor, rewrite, safetensors_bytes, sql

from know_core.cli import main
from know_core.store.runstore import RunStore


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("healthy")
    return root, *build_store(root)


@pytest.fixture
def store(base, tmp_path):
    """(root, forget id, experiment id, bad forget id, bad experiment id): a fresh copy with one clone of each kind
    to damage."""
    root, fid, eid = base
    dst = tmp_path / "runs"
    shutil.copytree(root, dst)
    return dst, fid, eid, clone(dst, fid, "bad-forget"), clone(dst, eid, "bad-exp")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys, argv, root=None, message: str | None = None) -> str:
    code, _, err = cli(capsys, *argv)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, (argv, err)
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    if message:
        assert message in err, err
    return err


def assert_healthy_listed(capsys, root, fid, eid):
    code, out, _ = cli(capsys, "runs", "list", "--json", "--runs-dir", str(root))
    assert code == 0
    status = {r["id"]: r["status"] for r in json.loads(out)}
    assert status[fid] == "done" and status[eid] == "done"
    assert cli(capsys, "runs", "show", fid, "--runs-dir", str(root))[0] == 0
    assert cli(capsys, "runs", "show", eid, "--runs-dir", str(root))[0] == 0
    return status


def _stage_shape(t):
    t = dict(t)
    key = next(k for k in t if k.startswith("trajectory/1/") and t[k].dim() == 2)
    t[key] = torch.zeros(3, 3)
    return t


def _header(**changes):
    """A change of the snapshot header's entries."""
    return lambda m: {**m, "snapshots": json.dumps({**json.loads(m["snapshots"]), **changes})}


def _nan_seed(t):
    t = dict(t)
    key = next(k for k in t if k.startswith("traj/1/"))
    t[key] = torch.full_like(t[key], float("nan"))
    return t


def _symlink(target):
    def damage(d, name):
        (d / name).unlink()
        (d / name).symlink_to(target)
    return damage


def _fifo(d, name):
    (d / name).unlink()
    os.mkfifo(d / name)


def _huge(d, name):
    with open(d / name, "r+b") as fh:
        fh.truncate(65 << 20)  # sparse: over the 64 MiB JSON limit without using the disk


def _folder_outside(root, run_id, tmp):
    outside = tmp / "outside"
    shutil.move(str(root / run_id), outside)
    (root / run_id).symlink_to(outside, target_is_directory=True)


# (case id, kind of the damaged run, damage(run dir, root, run id, tmp), command run on it ({id} = its id))
SHOW = ("runs", "show", "{id}")
PREDICT = ("predict", "--run", "{id}", "--method", "naive")
FILES_CASES = [  # class 2: files trusted once their checksum matched
    ("manifest-list", "forget", lambda d, *_: (d / "manifest.json").write_text("[]"), SHOW),
    ("manifest-files-list", "forget", lambda d, *_: (d / "manifest.json").write_text('{"files": ["a"]}'), SHOW),
    ("manifest-no-sha", "experiment", lambda d, *_: edit_json(d, "manifest.json", lambda m: {
        **m, "files": {**m["files"], "results.json": {}}}), SHOW),
    ("manifest-path-escape", "forget", lambda d, *_: edit_json(d, "manifest.json", lambda m: {
        **m, "files": {**m["files"], "../../etc/passwd": {"sha256": "0" * 64}}}), SHOW),
    ("row-config-not-json", "forget", lambda d, r, i, t: sql(r, "UPDATE runs SET config='{' WHERE id=?", (i,)), SHOW),
    ("row-config-list", "experiment", lambda d, r, i, t: sql(r, "UPDATE runs SET config='[]' WHERE id=?", (i,)),
     SHOW),
    ("row-summary-number", "forget", lambda d, r, i, t: sql(r, "UPDATE runs SET summary='5' WHERE id=?", (i,)),
     SHOW),
    ("row-status-unknown", "forget", lambda d, r, i, t: sql(r, "UPDATE runs SET status='zzz' WHERE id=?", (i,)),
     SHOW),
    ("results-empty-map", "experiment", lambda d, *_: rewrite(d, "results.json", "{}"), SHOW),
    ("results-list", "experiment", lambda d, *_: rewrite(d, "results.json", "[]"), SHOW),
    ("results-null-std", "experiment", lambda d, *_: edit_json(d, "results.json", lambda r: {
        **r, "summary": [{**e, "std": None} for e in r["summary"]]}), SHOW),
    ("results-nulls", "experiment", lambda d, *_: edit_json(d, "results.json", lambda r: {k: None for k in r}),
     SHOW),
    ("results-nan", "experiment", lambda d, *_: rewrite(d, "results.json", (d / "results.json").read_text().replace(
        '"mean": ', '"mean": NaN, "x": ', 1)), SHOW),
    ("seed-json-garbage", "experiment", lambda d, *_: rewrite(d, "seeds/seed-0.json", "not json"), SHOW),
    ("seed-json-groups", "experiment", lambda d, *_: edit_json(d, "seeds/seed-0.json", lambda s: {
        **s, "groups": {"x": "nope"}}), SHOW),
    ("seed-weights-nan", "experiment", lambda d, *_: retensor(d, "seeds/seed-0.safetensors", _nan_seed), SHOW),
    ("config-wrong-values", "forget", lambda d, *_: edit_json(d, "config.json", lambda c: {**c, "r": 7}), PREDICT),
    ("config-unknown-key", "experiment", lambda d, *_: edit_json(d, "config.json", lambda c: {**c, "zz": 1}), SHOW),
    ("trajectory-wrong-shape", "forget", lambda d, *_: retensor(d, "trajectory.safetensors", _stage_shape), PREDICT),
    ("trajectory-groups-list", "forget", lambda d, *_: retensor(d, "trajectory.safetensors",
                                                               change_meta=_header(groups=[])), PREDICT),
    ("trajectory-groups-garbage", "forget", lambda d, *_: retensor(d, "trajectory.safetensors",
                                                                  change_meta=_header(groups="{")), SHOW),
    ("trajectory-stages-huge", "forget", lambda d, *_: retensor(d, "trajectory.safetensors",
                                                               change_meta=_header(films={"trajectory": 3000000000})),
     PREDICT),
    ("safetensors-header-lies", "forget", lambda d, *_: rewrite(d, "trajectory.safetensors", safetensors_bytes(
        {"0/w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 4]}})), PREDICT),
    ("metrics-rows-missing", "forget", lambda d, *_: rewrite(d, "metrics.csv", "stage,size\n"), SHOW),
]
BOUNDS_CASES = [  # class 3: unbounded reads and special files
    ("config-dev-zero", "forget", lambda d, *_: _symlink("/dev/zero")(d, "config.json"), PREDICT),
    ("results-dev-zero", "experiment", lambda d, *_: _symlink("/dev/zero")(d, "results.json"), SHOW),
    ("results-fifo", "experiment", lambda d, *_: _fifo(d, "results.json"), SHOW),
    ("results-huge", "experiment", lambda d, *_: _huge(d, "results.json"), SHOW),
    ("manifest-dev-zero", "forget", lambda d, *_: _symlink("/dev/zero")(d, "manifest.json"), SHOW),
    ("trajectory-dev-zero", "forget", lambda d, *_: _symlink("/dev/zero")(d, "trajectory.safetensors"), PREDICT),
    ("seed-symlink-outside", "experiment", lambda d, r, i, t: _symlink(r / "index.sqlite")(d, "seeds/seed-0.json"),
     SHOW),
    ("folder-symlink-outside", "forget", lambda d, r, i, t: _folder_outside(r, i, t), PREDICT),
]


@pytest.mark.parametrize("case, kind, damage, command", FILES_CASES + BOUNDS_CASES, ids=[c[0] for c in
                                                                                         FILES_CASES + BOUNDS_CASES])
def test_a_damaged_run_is_named_and_the_others_stay_usable(store, capsys, tmp_path, case, kind, damage, command):
    root, fid, eid, bad_f, bad_e = store
    bad = bad_f if kind == "forget" else bad_e
    damage(root / bad, root, bad, tmp_path)
    argv = [a.replace("{id}", bad) for a in command] + ["--runs-dir", str(root)]
    err = assert_refused(capsys, argv)
    assert bad in err or "damaged" in err
    status = assert_healthy_listed(capsys, root, fid, eid)
    info = {r.id: r for r in RunStore(root).list_runs()}[bad]
    if info.status != "done":
        assert info.status in ("damaged", "failed") and info.error
    assert cli(capsys, "predict", "--run", fid, "--method", "naive", "--runs-dir", str(root))[0] == 0
    assert status[bad] in ("done", "damaged", "failed")


def test_predict_never_writes_through_a_symlinked_run_folder(store, capsys, tmp_path):
    root, fid, _, bad, _ = store
    _folder_outside(root, bad, tmp_path)
    before = sorted(p.name for p in (tmp_path / "outside").iterdir())
    assert_refused(capsys, ["predict", "--run", bad, "--method", "naive", "--runs-dir", str(root)])
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == before


@pytest.mark.parametrize("argv, message", [  # class 3 (sizes that fit memory) and 4 (errors of the wrong type)
    (["predict", "--run", "{fid}", "--method", "naive", "--steps", "100000"], "--steps"),
    (["predict", "--run", "{fid}", "--method", "known", "--weights", "{h5dir}"], "known"),
    (["predict", "--run", "{fid}", "--method", "known", "--weights", "{garbage}"], "known"),
    (["predict", "--run", "{fid}", "--method", "known", "--weights", "{wrongshape}"], "known"),
    (["predict", "--run", "{fid}", "--method", "known", "--weights", "/dev/zero"], "not a regular file"),
    (["predict", "--run", "{fid}", "--method", "known", "--weights", "/nonexistent.safetensors"], "weights"),
    (["backtest", "--run", "{fid}", "--methods", "known", "--weights", "{garbage}"], "known"),
    (["predict", "--run", "{fid}", "--method", "taskvector", "--lam", "nan"], "--lam"),
    (["demo", "--preset", "quick", "--out", "{tmp}/o", "--official-known", "/nonexistent"], "official_known"),
    (["demo", "--preset", "quick", "--out", "{tmp}/o", "--official-known", "{h5dir}", "--seeds", "0"], None),
], ids=["steps-huge", "h5-garbage", "ckpt-not-safetensors", "ckpt-wrong-shape", "weights-dev-zero",
        "weights-missing", "backtest-garbage", "lam-nan", "official-missing", "official-garbage"])
def test_bad_predictor_inputs_exit_2(store, capsys, tmp_path, argv, message):
    from safetensors.torch import save_file

    root, fid, *_ = store
    h5dir = tmp_path / "h5"
    h5dir.mkdir()
    for name in ("KNOWN_Conv.h5", "KNOWN_FC.h5", "KNOWN_Bias.h5"):
        (h5dir / name).write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(64))
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(256))
    save_file({"conv.0.weight": torch.zeros(2, 2)}, str(tmp_path / "wrong.safetensors"))
    subst = {"{fid}": fid, "{h5dir}": str(h5dir), "{garbage}": str(tmp_path / "garbage.safetensors"),
             "{wrongshape}": str(tmp_path / "wrong.safetensors"), "{tmp}": str(tmp_path)}
    argv = [subst.get(a, a).replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] != "demo":
        argv += ["--runs-dir", str(root)]
    assert_refused(capsys, argv, message=message)
    assert not (tmp_path / "o" / "results.json").exists()
