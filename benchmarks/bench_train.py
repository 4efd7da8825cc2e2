"""Training-loop input overhead: our tensor-resident loop vs a torchvision DataLoader+ToTensor loop vs bare steps.

All three train the same simple_cnn on the same 20,000 Fashion-MNIST images (digits when Fashion-MNIST is absent) with
Adam, batch 128, in one process. "Bare" is forward/backward/step over batches sliced in advance: the floor any loop
can reach. Goal (issue 2): our overhead over bare <= 5 % of step time.
"""

from __future__ import annotations

import _common
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from know_core.data import load_dataset
from know_core.data.fashion_mnist import fashion_mnist_available
from know_core.engine.config import OptimConfig
from know_core.engine.train import Members, make_optimizer, train_epoch
from know_core.models import create_model

N, BATCH, ROUNDS = 20_000, 128, 5


def fresh(ds):
    torch.manual_seed(0)
    model = create_model("simple_cnn", ds.input_shape, ds.num_classes)
    return model, make_optimizer(model, OptimConfig())


class RawImages(torch.utils.data.Dataset):
    """What a torchvision dataset does: uint8 image -> PIL -> ToTensor -> Normalize, one sample at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.tf(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def main() -> None:
    name = "fashion-mnist" if fashion_mnist_available() else "digits"
    ds = load_dataset(name)
    n = min(N, len(ds.y_train))
    x, y = ds.x_train[:n].contiguous(), ds.y_train[:n].contiguous()
    raw = ((x[:, 0] - x.min()) / (x.max() - x.min()) * 255).round().to(torch.uint8).numpy()
    loss_fn = torch.nn.functional.cross_entropy

    def bare():
        model, opt = fresh(ds)
        batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, n, BATCH)]
        model.train()
        for xb, yb in batches:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def ours():
        model, opt = fresh(ds)
        m = Members([model], x, y, BATCH)
        train_epoch(m, opt, m.everything(), [torch.Generator().manual_seed(0)])

    def dataloader():
        model, opt = fresh(ds)
        model.train()
        loader = DataLoader(RawImages(raw, y.numpy()), batch_size=BATCH, shuffle=True, num_workers=0,
                            generator=torch.Generator().manual_seed(0))
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    bare()  # warm-up (allocator, kernels)
    # Interleaved rounds, best of each: a burst of load on the shared cores then hits all three loops alike.
    rounds = [[_common.best_time(f, repeats=1) for f in (bare, ours, dataloader)] for _ in range(ROUNDS)]
    t_bare, t_ours, t_dl = (min(r[i] for r in rounds) for i in range(3))
    overhead = (t_ours - t_bare) / t_ours
    print(f"{name}, {n} samples, simple_cnn, batch {BATCH}, {torch.get_num_threads()} threads")
    print(f"{'loop':<28}{'samples/s':>12}{'vs ours':>10}")
    for label, t in (("bare forward/backward", t_bare), ("ours (tensor-resident)", t_ours),
                     ("DataLoader + ToTensor", t_dl)):
        print(f"{label:<28}{n / t:>12.0f}{t_ours / t:>10.2f}")
    print(f"our input overhead: {overhead:.1%} of step time (goal <= 5 %)")
    _common.emit({"dataset": name, "samples": n, "bare_sps": n / t_bare, "ours_sps": n / t_ours,
                  "dataloader_sps": n / t_dl, "speedup_vs_dataloader": t_dl / t_ours, "input_overhead": overhead,
                  "overhead_goal_met": overhead <= 0.05, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
