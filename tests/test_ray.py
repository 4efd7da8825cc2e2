"""The Ray executor on a local Ray instance and on a two-node ``ray.cluster_utils.Cluster`` that loses a node
mid-sweep: the same table as the inline executor either way."""

from __future__ import annotations

import threading

import pytest
from sweep_helpers import assert_same_table, run_tiny, tiny_spec

from know_core.executors import make_executor
from know_core.store.runstore import RunStore
from know_core.sweep import create_sweep, run_sweep
from know_core.sweep.runner import read_sweep

ray = pytest.importorskip("ray", reason="Ray is in requirements.txt; this environment lacks it")


@pytest.fixture(scope="module")
def inline_table(tmp_path_factory):
    return run_tiny(tmp_path_factory.mktemp("inline"), make_executor("inline"))[1]


@pytest.fixture
def no_ray():
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_local_ray_gives_the_same_table_as_inline(tmp_path, inline_table, no_ray):
    ex = make_executor("ray", 2)
    try:
        assert ray.is_initialized() and "local instance" in ex.describe()
        _, table = run_tiny(tmp_path, ex)
    finally:
        ex.close()
    assert not ray.is_initialized()  # the executor shuts down the instance it started
    assert_same_table(table, inline_table)


def test_a_two_node_cluster_that_loses_a_node_still_completes_identically(tmp_path, inline_table, no_ray):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address)
        cluster.wait_for_nodes()
        ex = make_executor("ray")
        assert ex.workers == 2
        store = RunStore(tmp_path)
        sweep_id = create_sweep(store, tiny_spec(seeds=(0, 1, 2)), "lossy")
        removed = threading.Event()

        def lose_a_node(counts):
            if counts["finished"] >= 1 and not removed.is_set():
                removed.set()
                cluster.remove_node(worker, allow_graceful=False)

        counts = run_sweep(store, sweep_id, ex, lose_a_node)
        assert removed.is_set(), "the sweep finished before a node could be lost"
        assert counts["finished"] == counts["total"] == 6 and counts["failed"] == 0
        assert store.info(sweep_id).status == "done"
        state = read_sweep(store, sweep_id)
        assert all(u["status"] == "done" for u in state["units"].values())
        import pandas as pd

        table = pd.read_parquet(tmp_path / sweep_id / "results.parquet")
        seeds_01 = table[table.seed.isin([0, 1])].reset_index(drop=True)
        assert_same_table(seeds_01, inline_table)
    finally:
        ray.shutdown()
        cluster.shutdown()
