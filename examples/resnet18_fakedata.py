"""Record a forgetting film on your own network and data: a torchvision ResNet-18 on a FakeData stand-in.

Swap in your own ``nn.Module`` and ``Dataset`` of (image tensor, class index) items; nothing needs registering.

    python examples/resnet18_fakedata.py --runs-dir runs          # 512 images of 3×32×32, 10 classes (≤ 2 min on CPU)
    python examples/resnet18_fakedata.py --quick --runs-dir /tmp/r  # a shrunken version in seconds (what CI runs)
    python -m know_core runs show RUN_ID                           # then: the Trajectory page opens the run

FakeData is random noise with random labels, so the network can only memorise it: the film shows what forgetting
looks like when D0 is memorised and the stages stop seeing part of it.
"""

from __future__ import annotations

import argparse
import time

import torchvision
from torchvision.transforms import ToTensor

from know_core.api import record_forgetting
from know_core.common.threads import apply_threads

FULL = dict(size=512, image=32, stages=4, pretrain_epochs=8, batch_size=16, test=128)
QUICK = dict(size=64, image=16, stages=2, pretrain_epochs=1, batch_size=8, test=32)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--quick", action="store_true", help="64 images of 3×16×16, one pre-training epoch, 2 stages")
    args = p.parse_args(argv)
    # torch's threads = the cores free now (as every training command does): two OpenMP pools on busy cores ran this
    # example 10× slower (KNOW_THREADS or OMP_NUM_THREADS fix the count)
    apply_threads()
    s = QUICK if args.quick else FULL
    shape = (3, s["image"], s["image"])
    train = torchvision.datasets.FakeData(s["size"], shape, 10, ToTensor(), random_offset=0)
    test = torchvision.datasets.FakeData(s["test"], shape, 10, ToTensor(), random_offset=10**6)
    model = torchvision.models.resnet18(num_classes=10)  # random init; a pre-trained network works the same way

    t0 = time.perf_counter()
    run_id = record_forgetting(
        model, train, test, r=0.5, stages=s["stages"], stage_budget="epochs:1", optimizer="adam", lr=1e-3,
        batch_size=s["batch_size"], pretrain_epochs=s["pretrain_epochs"], device=args.device,
        settings={"d0_fraction": 0.5},  # half the pool as D0 leaves room for a warm oracle on ×2 the data
        runs_dir=args.runs_dir, name="resnet18 on FakeData" + (" (quick)" if args.quick else ""),
        model_name="torchvision.resnet18", data_name="FakeData")
    print(f"recorded run {run_id} in {time.perf_counter() - t0:.1f} s")
    print(f"see it: python -m know_core runs show {run_id} --runs-dir {args.runs_dir}; or the dashboard's Trajectory "
          "page")
    return run_id


if __name__ == "__main__":
    main()
