"""Live-storage accounting on the CPU: what a region of code keeps alive and its peak.

A TorchDispatchMode records every storage an aten op creates (weakly); ``alive()`` sums those still
referenced, ``peak`` is the largest such sum seen after any op. Storages that existed before the mode was
entered (parameters, inputs) are never counted.
"""

from __future__ import annotations

import gc

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveStorages(TorchDispatchMode):
    def __init__(self, exclude: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.refs: dict[int, tuple[StorageWeakRef, int]] = {}
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu" and not t.is_meta:
                st = t.untyped_storage()
                ptr = st.data_ptr()
                known = self.refs.get(ptr)
                if ptr and ptr not in self.excluded and (known is None or known[0].expired()):
                    self.refs[ptr] = (StorageWeakRef(st), st.nbytes())
        self.peak = max(self.peak, self.alive(collect=False))
        return out

    def alive(self, collect: bool = True) -> int:
        if collect:
            gc.collect()
        dead = [p for p, (ref, _) in self.refs.items() if ref.expired()]
        for p in dead:
            del self.refs[p]
        return sum(n for _, n in self.refs.values())


class PackedStorages(torch.autograd.graph.saved_tensors_hooks):
    """What autograd nodes pack (also inside compiled graphs, whose CompiledFunction saves through these
    hooks), each storage once, inputs excluded."""

    def __init__(self, exclude: tuple[torch.Tensor, ...] = ()) -> None:
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self.storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            st = t.untyped_storage()
            if st.data_ptr() not in self.excluded and not isinstance(t, torch.nn.Parameter):
                self.storages[st.data_ptr()] = st.nbytes()
            return t

        super().__init__(pack, lambda t: t)

    @property
    def total(self) -> int:
        return sum(self.storages.values())
