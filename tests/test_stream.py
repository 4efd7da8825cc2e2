"""Films processed one tensor at a time (issue 19 point 5): the streamed files equal what the in-memory path writes,
and no more than one parameter's window of tensors read from a file is alive at once."""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from know_core.cli import main
from know_core.common.finite import all_finite
from know_core.engine.extrapolate import extrapolate, stream_predictions
from know_core.engine.windows import flatten
from know_core.experiment.pca import fit_pca, gram_pca
from know_core.imports.film import open_imported_film, open_imported_run
from know_core.models import predicted_groups
from know_core.predictors import KNOWN, get_predictor
from know_core.store import tensorfile
from know_core.store.runstore import RunStore
from know_core.store.snapshots import SnapshotFile, SnapshotWriter, pack, unpack
from know_core.store.tensorfile import TensorFile, TensorWriter

STAGES = 6


class Alive:
    """Counts the tensors :meth:`TensorFile.get` returned that are still alive, and the most at any time."""

    def __init__(self, monkeypatch):
        self.now = self.most = self.reads = 0
        original = TensorFile.get

        def get(fh, key):
            t = original(fh, key)
            self.now += 1
            self.reads += 1
            self.most = max(self.most, self.now)
            weakref.finalize(t, self._gone)
            return t

        monkeypatch.setattr(TensorFile, "get", get)

    def _gone(self) -> None:
        self.now -= 1


def film(tmp_path: Path) -> list[Path]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                torch.nn.Linear(12, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 2))
    paths = []
    for i in range(STAGES):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.01)
        paths.append(tmp_path / f"theta{i}.safetensors")
        save_file({k: v.clone() for k, v in model.state_dict().items()}, paths[-1])
    return paths


def imported(tmp_path: Path, steps: int | None = None) -> tuple[Path, str]:
    """(runs dir, run id) of :func:`film` imported by the ``import`` command, with taskvector's predictions
    ×(1/r) … ×(1/r)^steps stored by ``predict`` when ``steps`` is given."""
    runs = tmp_path / "runs"
    assert main(["import", *map(str, film(tmp_path)), "--kind", "forgetting", "--quiet", "--runs-dir",
                 str(runs)]) == 0
    run_id = RunStore(runs, create=False).list_runs()[0].id
    if steps is not None:
        assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", str(steps), "--quiet",
                     "--runs-dir", str(runs)]) == 0
    return runs, run_id


def test_tensor_writer_is_byte_identical_to_save_file(tmp_path):
    tensors = {"b.w": torch.randn(3, 4), "a": torch.arange(5), "m": torch.tensor([True, False]),
               "h": torch.randn(7).half(), "s": torch.tensor(2.5, dtype=torch.float64),
               "z": torch.randn(2, 3).bfloat16(), "e": torch.zeros(0, 3)}
    save_file(tensors, tmp_path / "a.safetensors", metadata={"format": "pt"})
    with TensorWriter(tmp_path / "b.safetensors", {k: (v.dtype, tuple(v.shape)) for k, v in tensors.items()},
                      {"format": "pt"}) as writer:
        for key in reversed(list(tensors)):  # any order
            writer.write(key, tensors[key])
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    with TensorFile(tmp_path / "b.safetensors") as fh:
        assert all(torch.equal(fh.get(k), v) and fh.get(k).dtype == v.dtype for k, v in tensors.items())
    with pytest.raises(ValueError, match="never written"):
        TensorWriter(tmp_path / "c.safetensors", {"x": (torch.float32, (2,))}).close()


def test_snapshot_writer_matches_pack_and_reader_checks_digest(tmp_path):
    states = [{"w": torch.randn(3, 4) + i, "n": torch.tensor(i)} for i in range(12)]  # indices 10, 11 sort early
    tensors, meta = pack({"trajectory": states}, {"groups": {"w": "fc"}})
    save_file(tensors, tmp_path / "a.safetensors", metadata=meta)
    shapes = {"w": ((3, 4), torch.float32), "n": ((), torch.int64)}
    with SnapshotWriter(tmp_path / "b.safetensors", {"trajectory": 12}, shapes, {"groups": {"w": "fc"}}) as w:
        for name in shapes:
            for i in range(12):
                w.put("trajectory", i, name, states[i][name])
    data = (tmp_path / "b.safetensors").read_bytes()
    assert (tmp_path / "a.safetensors").read_bytes() == data  # out of key order: the digest read back at the end
    with SnapshotWriter(tmp_path / "d.safetensors", {"trajectory": 12}, shapes, {"groups": {"w": "fc"}}) as w:
        for film, i, name in SnapshotWriter.key_order({"trajectory": 12}, list(shapes)):
            w.put(film, i, name, states[i][name])  # in key order: hashed as they come
    assert (tmp_path / "d.safetensors").read_bytes() == data
    with SnapshotFile(tmp_path / "b.safetensors", "b") as fh:
        assert fh.films == {"trajectory": 12} and fh.meta == {"groups": {"w": "fc"}}
        assert torch.equal(fh.get("trajectory", 11, "w"), states[11]["w"])
    corrupt = bytearray(data)
    corrupt[-1] ^= 1
    (tmp_path / "c.safetensors").write_bytes(bytes(corrupt))
    with pytest.raises(Exception, match="digest"):
        SnapshotFile(tmp_path / "c.safetensors", "c")
    films, _ = unpack(tensors, meta, "a")
    assert torch.equal(films["trajectory"][3]["w"], states[3]["w"])


def test_tensor_writer_writes_in_the_background_and_inline_alike(tmp_path, monkeypatch):
    """Tensors over BACKGROUND_BYTES are written by the caller, the others by the writer's thread: the same file,
    ``then`` sees each tensor's bytes in the order of the writes, and a background error reaches the caller."""
    monkeypatch.setattr(tensorfile, "BACKGROUND_BYTES", 40)
    tensors = {f"t{i}": torch.randn(i + 1, 3) for i in range(8)}  # 12 to 96 bytes: both ways
    specs = {k: (v.dtype, tuple(v.shape)) for k, v in tensors.items()}
    save_file(tensors, tmp_path / "a.safetensors")
    seen = []
    with TensorWriter(tmp_path / "b.safetensors", specs) as writer:
        for key in reversed(list(tensors)):
            writer.write(key, tensors[key], lambda data, key=key: seen.append((key, bytes(data))))
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert seen == [(k, tensors[k].numpy().tobytes()) for k in reversed(list(tensors))]

    def fail(data):
        raise OSError(28, "No space left on device")
    writer = TensorWriter(tmp_path / "c.safetensors", {"x": (torch.float32, (2,)), "y": (torch.float32, (2,))})
    writer.write("x", torch.zeros(2), fail)  # 8 bytes: in the background
    with pytest.raises(OSError, match="No space"):
        writer.write("y", torch.ones(2))
    with pytest.raises(ValueError, match="never written"):
        writer.close()


def test_snapshot_writer_hashes_snapshot_zero_as_it_comes_between_others(tmp_path, monkeypatch):
    """The streamed predictor's order (each name's Θ̂_{−1..−3} in turn, names sorted): Θ̂_{−1}'s tensors are hashed as
    written, only the other snapshots are read back for the digest, and the file is the in-memory one."""
    states = [{"w": torch.randn(3, 4) + i, "b": torch.randn(4) - i, "n": torch.tensor(i)} for i in range(3)]
    tensors, meta = pack({"predictions": states}, {"method": "m"})
    save_file(tensors, tmp_path / "a.safetensors", metadata=meta)
    shapes = {name: (tuple(t.shape), t.dtype) for name, t in states[0].items()}
    alive = Alive(monkeypatch)
    with SnapshotWriter(tmp_path / "b.safetensors", {"predictions": 3}, shapes, {"method": "m"}) as w:
        for name in sorted(shapes):
            for k in range(3):
                w.put("predictions", k, name, states[k][name])
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert alive.reads == 2 * len(shapes)  # snapshots 1 and 2 read back; snapshot 0 hashed as it came


def test_all_finite_is_exact():
    x = torch.randn(1000)
    assert all_finite(x) and all_finite(torch.zeros(0)) and all_finite(x.half()) and all_finite(x.double())
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[517] = bad
        assert not all_finite(y) and not all_finite(y.bfloat16())
    y = x.clone()
    y[3], y[900] = float("inf"), -float("inf")  # their sum is NaN, still refused
    assert not all_finite(y)
    assert all_finite(torch.full((10,), 3e38))  # finite values whose sum overflows: checked one by one


@pytest.mark.parametrize("method", ["naive", "taskvector", "expfit", "known"])
def test_streamed_prediction_equals_in_memory_one_window_alive(tmp_path, monkeypatch, method):
    runs = tmp_path / "runs"
    alive = Alive(monkeypatch)
    assert main(["import", *map(str, film(tmp_path)), "--kind", "forgetting", "--quiet", "--runs-dir",
                 str(runs)]) == 0
    # import: one tensor at a time (and the one before it, while the writer's thread may still be writing it)
    assert alive.most <= 2 and alive.reads > 0
    store = RunStore(runs, create=False)
    run_id = store.list_runs()[0].id
    _, _, mem = open_imported_run(store, run_id)
    torch.manual_seed(0)
    predictor = get_predictor(method, **({"weights": {g: KNOWN().eval() for g in ("conv", "fc", "bias")}}
                                         if method == "known" else {}))
    groups = predicted_groups(mem.groups, False)
    expected = extrapolate(mem.states, groups, predictor, 3, reset_norm=True)
    alive.most = 0
    _, _, streamed = open_imported_film(store, run_id)
    assert alive.most <= 1  # nothing but headers (the run's manifest checksum covers the file)
    alive.most = 0
    stream_predictions(tmp_path / "pred.safetensors", streamed.get, streamed.stages, streamed.shapes, groups,
                       predictor, 3, {"method": method}, reset_norm=True)
    streamed.snapshots.close()
    # one parameter's window, never two parameters or two whole snapshots (and a kept tensor read before it, which
    # the writer's thread may still be writing)
    assert alive.most <= STAGES + 1
    with SnapshotFile(tmp_path / "pred.safetensors", "pred") as fh:
        assert fh.films == {"predictions": 3}
        for k in range(3):
            for name, t in expected[k].items():
                got = fh.get("predictions", k, name)
                assert got.dtype == t.dtype, (k, name)
                if method == "known":  # its fast path's matrix kernels round by the chunk's row count
                    torch.testing.assert_close(got, t, rtol=1e-5, atol=1e-6)
                else:
                    assert torch.equal(got, t), (k, name)
    if method == "known":
        return
    # and the file is byte for byte what the in-memory path stores
    tensors, meta = pack({"predictions": expected}, {"method": method})
    save_file(tensors, tmp_path / "mem.safetensors", metadata=meta)
    assert (tmp_path / "mem.safetensors").read_bytes() == (tmp_path / "pred.safetensors").read_bytes()


def test_streamed_export_reads_one_tensor_at_a_time(tmp_path, monkeypatch):
    runs, run_id = imported(tmp_path, steps=3)
    alive = Alive(monkeypatch)
    out = tmp_path / "out"
    assert main(["export", "--run", run_id, "--method", "taskvector", "--scale", "x4", "--out", str(out),
                 "--runs-dir", str(runs)]) == 0
    assert alive.most <= 2  # the tensor read, and the one before it while the writer's thread may be writing it
    _, _, mem = open_imported_run(RunStore(runs, create=False), run_id)
    expected = extrapolate(mem.states, predicted_groups(mem.groups, False), get_predictor("taskvector"), 3)[1]
    with TensorFile(out / "theta0.safetensors") as fh:
        assert set(fh.keys()) == set(expected)
        assert all(torch.equal(fh.get(k), v) for k, v in expected.items())


def test_gram_pca_matches_the_svd_one_parameter_at_a_time():
    gen = torch.Generator().manual_seed(0)
    points = [{"a": torch.randn(5, 4, generator=gen) * (1 + i), "b": torch.randn(7, generator=gen) + i}
              for i in range(6)]
    names = ["a", "b"]
    full = fit_pca(torch.stack([flatten(p, names) for p in points]), k=3)
    read = []
    streamed = gram_pca(lambda i, name: read.append(name) or points[i][name], len(points), names, k=3)
    torch.testing.assert_close(streamed.coords, full.coords, rtol=1e-6, atol=1e-9)
    assert streamed.explained == pytest.approx(full.explained, rel=1e-9)
    assert read == ["a"] * 6 + ["b"] * 6  # one parameter of every point, then the next


def test_a_changed_trajectory_file_is_refused_before_streaming(tmp_path):
    runs, run_id = imported(tmp_path)
    store = RunStore(runs, create=False)
    path = runs / run_id / "trajectory.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="checksum"):
        open_imported_film(store, run_id)


def test_export_reads_the_predictions_not_the_trajectory(tmp_path):
    """Export writes the predictions in the source's layout: the trajectory's bytes are not read (nor checksummed),
    the predictions' are."""
    runs, run_id = imported(tmp_path, steps=2)
    for name, code in (("trajectory.safetensors", 0), ("pred-taskvector.safetensors", 2)):
        path = runs / run_id / name
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
        out = tmp_path / f"out-{code}"
        assert main(["export", "--run", run_id, "--method", "taskvector", "--scale", "x2", "--out", str(out),
                     "--runs-dir", str(runs)]) == code
        assert out.exists() == (code == 0)


def test_import_records_every_source_files_sha256(tmp_path):
    """The sources' digests (hashed on their own thread while the trajectory is written) are those of the files."""
    runs = tmp_path / "runs"
    paths = film(tmp_path)
    assert main(["import", *map(str, paths), "--kind", "forgetting", "--quiet", "--runs-dir", str(runs)]) == 0
    store = RunStore(runs, create=False)
    layout = store.open(store.list_runs()[0].id).read_json("layout.json")
    assert [s["sha256"] for s in layout["sources"]] == [{p.name: hashlib.sha256(p.read_bytes()).hexdigest()}
                                                        for p in paths]
