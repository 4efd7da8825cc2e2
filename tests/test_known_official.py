"""KNOWN against the authors' own networks: the Keras importer, and parity with outputs of their code.

The official files never enter the repository: ``$KNOW_OFFICIAL_KNOWN`` names their folder (the tests fall back to
the sibling ``../shared/official-known``), and the parity tests skip without them. The importer's error handling is
tested on small files written here with h5py in the official layout, so it runs everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import OFFICIAL_KNOWN

from know_core.predictors import KNOWN, get_predictor, load_keras_h5, predict_fast
from know_core.predictors.known import KERAS_LAYERS, OFFICIAL_FILES

h5py = pytest.importorskip("h5py")

GROUPS = ("conv", "fc", "bias")
TOL = 1e-5


@pytest.fixture(scope="module")
def official() -> Path:
    if not all((OFFICIAL_KNOWN / name).is_file() for name in (*OFFICIAL_FILES.values(), "golden_public.npz")):
        pytest.skip(f"official KNOWN files not found in {OFFICIAL_KNOWN} (set KNOW_OFFICIAL_KNOWN)")
    return OFFICIAL_KNOWN


@pytest.fixture(scope="module")
def golden(official: Path) -> dict[str, np.ndarray]:
    with np.load(official / "golden_public.npz") as data:
        return dict(data)


def write_keras_h5(net: KNOWN, path: Path, skip: str | None = None, reshape: str | None = None) -> Path:
    """``net`` in the official file layout, layers written in reverse so that only names can match them."""
    with h5py.File(path, "w") as f:
        for module_name, layer in reversed(list(KERAS_LAYERS.items())):
            if layer == skip:
                continue
            linear = net.get_submodule(module_name)
            kernel = linear.weight.detach().numpy().T
            if layer == reshape:
                kernel = np.zeros((kernel.shape[0] + 1, kernel.shape[1]), np.float32)
            f[f"{layer}/{layer}/kernel:0"] = kernel
            f[f"{layer}/{layer}/bias:0"] = linear.bias.detach().numpy()
    return path


# --- parity with the authors' code ----------------------------------------------------------------------------

@pytest.mark.parametrize("group", GROUPS)
def test_eager_and_fast_match_official_outputs(official, golden, group):
    net = load_keras_h5(official / OFFICIAL_FILES[group])
    assert not net.training and net.input_mode == "raw"
    window = torch.from_numpy(golden[f"{group}_window"])
    with torch.no_grad():
        delta, pred = net.delta(window), net(window)
    fast = predict_fast(net, window)
    assert delta.dtype == pred.dtype == fast.dtype == torch.float32
    np.testing.assert_allclose(delta.numpy(), golden[f"{group}_delta"], rtol=0, atol=TOL)
    np.testing.assert_allclose(pred.double().numpy(), golden[f"{group}_pred"], rtol=0, atol=TOL)
    np.testing.assert_allclose(fast.double().numpy(), golden[f"{group}_pred"], rtol=0, atol=TOL)


@pytest.mark.parametrize("group", GROUPS)
def test_predictor_rollout_matches_official(official, golden, group):
    predictor = get_predictor("known", weights=official)
    window = torch.from_numpy(golden[f"{group}_window"])
    rolled = predictor.predict(window, steps=3, group=group)
    np.testing.assert_allclose(rolled[:, 0].double().numpy(), golden[f"{group}_pred"], rtol=0, atol=TOL)
    recur = golden[f"{group}_recur3"]
    np.testing.assert_allclose(rolled[:len(recur)].double().numpy(), recur, rtol=0, atol=TOL)


def test_each_group_uses_its_own_network(official, golden):
    predictor = get_predictor("known", weights=official)
    window = torch.from_numpy(golden["conv_window"])
    conv, fc = predictor.predict(window, group="conv"), predictor.predict(window, group="fc")
    assert float((conv - fc).abs().max()) > 1e-3


# --- importer -------------------------------------------------------------------------------------------------

def test_importer_maps_layers_by_name(tmp_path: Path):
    torch.manual_seed(0)
    source = KNOWN()
    net = load_keras_h5(write_keras_h5(source, tmp_path / "net.h5"))
    for key, value in source.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key


def test_importer_names_a_missing_layer(tmp_path: Path):
    path = write_keras_h5(KNOWN(), tmp_path / "net.h5", skip="dense_7")
    with pytest.raises(
        ValueError, match=r"layer 'dense_7' \(d_stream.squeeze\) has no array 'dense_7/dense_7/kernel:0'"
    ):
        load_keras_h5(path)


def test_importer_names_a_wrong_shape(tmp_path: Path):
    path = write_keras_h5(KNOWN(), tmp_path / "net.h5", reshape="dense_11")
    with pytest.raises(ValueError, match=r"'dense_11/dense_11/kernel:0' has shape \(65, 32\), expected \(64, 32\)"):
        load_keras_h5(path)


def test_weights_folder_must_hold_all_three_files(tmp_path: Path):
    for name in ("KNOWN_Conv.h5", "KNOWN_FC.h5"):
        write_keras_h5(KNOWN(), tmp_path / name)
    with pytest.raises(FileNotFoundError, match="lacks KNOWN_Bias.h5"):
        get_predictor("known", weights=tmp_path)
    write_keras_h5(KNOWN(), tmp_path / "KNOWN_Bias.h5")
    assert get_predictor("known", weights=tmp_path).predict(torch.zeros(2, 5), group="bias").shape == (2, 1)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_keras_h5(tmp_path / "absent.h5")
