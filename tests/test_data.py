import gzip

import numpy as np
import pytest
import torch

from know_core.common.errors import DataError
from know_core.data import fashion_mnist, load_dataset, nested_order, stage_sizes


@pytest.mark.parametrize("name", ["digits", "synthetic", "mnist-5k"])
def test_embedded_datasets_are_normalised_tensors(name):
    ds = load_dataset(name)
    assert ds.x_train.dtype == torch.float32 and ds.x_train.ndim == 4
    assert len(ds.x_train) == len(ds.y_train) and len(ds.x_test) == len(ds.y_test)
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1) < 1e-2
    assert int(ds.y_train.max()) + 1 == ds.num_classes
    assert set(torch.unique(ds.y_test).tolist()) == set(range(ds.num_classes))  # stratified: every class in test


def test_mnist_5k_split_is_stratified():
    ds = load_dataset("mnist-5k")
    assert ds.input_shape == (1, 28, 28) and len(ds.y_train) == 4000
    assert torch.bincount(ds.y_train).tolist() == [400] * 10


@pytest.mark.skipif(not fashion_mnist.fashion_mnist_available(),
                    reason="Debian package dataset-fashion-mnist not installed (scripts/setup.sh installs it)")
def test_fashion_mnist_from_debian_files():
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)


def test_missing_dataset_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist"):
        fashion_mnist._fashion_mnist(None)
    monkeypatch.delenv("KNOW_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="--data-root"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="looked in"):
        load_dataset("cifar100", str(tmp_path))


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'nope'.*digits"):
        load_dataset("nope")


def test_truncated_idx_file_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(path, "wb") as fh:
        fh.write(header + bytes(100))
    with pytest.raises(DataError, match="truncated"):
        fashion_mnist._read_idx(path)


@pytest.mark.parametrize("balanced", [False, True])
def test_nested_subsets_are_prefixes_of_one_seeded_shuffle(balanced):
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    order = nested_order(labels, seed=3, balanced=balanced)
    assert sorted(order.tolist()) == list(range(100))  # a permutation
    assert torch.equal(order, nested_order(labels, seed=3, balanced=balanced))  # seeded
    assert not torch.equal(order, nested_order(labels, seed=4, balanced=balanced))
    sizes = stage_sizes(100, 0.5, 4)
    subsets = [set(order[:n].tolist()) for n in sizes]
    assert all(small < big for big, small in zip(subsets, subsets[1:]))  # D0 ⊃ D1 ⊃ D2 ⊃ D3
    if balanced:
        for n in (3, 12, 30, 60):
            counts = torch.bincount(labels[order[:n]], minlength=3)
            assert int(counts.max() - counts.min()) <= 1, (n, counts)


def test_stage_sizes_follow_floor_of_r_powers():
    assert stage_sizes(1000, 0.5, 5) == [1000, 500, 250, 125, 62]
    assert stage_sizes(900, 1 / 3, 3) == [900, 300, 100]
    assert stage_sizes(7, 0.9, 3) == [7, int(np.floor(7 * 0.9)), int(np.floor(7 * 0.81))]


def test_class_subsets_make_held_out_tasks():
    full = load_dataset("digits")
    low, high = load_dataset("digits:0-4"), load_dataset("digits:9,5")
    assert low.num_classes == 5 and set(low.y_train.tolist()) == set(range(5))
    assert high.num_classes == 2 and len(high.y_test) == int(((full.y_test == 9) | (full.y_test == 5)).sum())
    assert torch.equal(high.x_train[high.y_train == 0], full.x_train[full.y_train == 9])  # relabelled in given order
    for bad in ("digits:0-12", "digits:3", "digits:a-b", "digits:1,1"):
        with pytest.raises(DataError, match="classes"):
            load_dataset(bad)
