"""Whether a float tensor holds only finite values, at the speed of one summation.

``torch.isfinite(t).all()`` ran at about 1.4 GB/s on the 2-core CPU box (torch 2.x: an element-wise pass that writes
a bool tensor, then a reduction over it): 2.5 s of a 124 M-parameter film's import went to it. A sum reads the tensor
once and writes nothing, about 50× faster there, and is an exact test in one direction: IEEE arithmetic never turns a
NaN or an infinity back into a finite number (NaN + x = NaN, ±inf + finite = ±inf, inf + -inf = NaN), so a finite sum
proves every value finite. A non-finite sum (a NaN or an infinity somewhere, or finite values whose sum overflowed)
is then settled element by element, which only bad or huge tensors pay for.
"""

from __future__ import annotations

import torch


def all_finite(t: torch.Tensor) -> bool:
    """True when every value of the floating-point tensor ``t`` is finite (no NaN, no ±inf)."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
