"""Instrumentation used by measure_memory.py: who saves what for backward, and what stays alive.

Two independent measurements of "the bytes the forward pass keeps for the backward pass":

A. ``SavedTensorRecorder`` -- torch.autograd.graph.saved_tensors_hooks.  Every tensor an autograd node packs
   (including ctx.save_for_backward of custom Functions) is recorded with its untyped storage (data_ptr, nbytes),
   shape, dtype and the module that was running when it was packed.  Storages are counted once.  Blind to
   tensors that are kept without being packed (closures of non-reentrant checkpointing, ``ctx.tensors = ...``
   attributes such as bitsandbytes' MatMul8bitLt) and to anything inside a checkpointed region (the checkpoint's
   own hooks are innermost there).

B. ``StorageTracker`` -- a TorchDispatchMode that records a weak reference to the storage of every tensor any
   aten op produces during the forward.  After the forward (model outputs dropped, only the loss kept), the
   storages still alive are exactly what the autograd graph (and checkpoint closures) keep for the backward.

Both exclude parameters and buffers of the model by storage pointer.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def storage_of(t: torch.Tensor):
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


class ModuleContext:
    """Keeps a stack of the module names being executed (forward pre/post hooks on every module)."""

    def __init__(self, model: torch.nn.Module, layer_prefix: str, head_module: str):
        self.stack: list[str] = []
        self.handles = []
        self.layer_prefix = layer_prefix  # e.g. "base_model.model.model.layers."
        self.head_module = head_module  # the *ForCausalLM module: code that runs directly in it is head/loss
        for name, mod in model.named_modules():
            if not name:
                continue
            self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
            self.handles.append(mod.register_forward_hook(self._post(name), always_call=True))

    def _pre(self, name):
        def hook(mod, args):
            self.stack.append(name)

        return hook

    def _post(self, name):
        def hook(mod, args, out):
            # pop up to and including our own name (robust to exceptions inside checkpoint early stop)
            while self.stack:
                top = self.stack.pop()
                if top == name:
                    break

        return hook

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else ""

    def region(self, name: str | None = None) -> str:
        """Classify a module name into 'layer:<i>', 'head' or 'rest'."""
        name = self.current if name is None else name
        if self.layer_prefix in name + ".":
            rest = (name + ".").split(self.layer_prefix, 1)[1]
            return "layer:" + rest.split(".", 1)[0]
        if "lm_head" in name or name == self.head_module:
            return "head"
        return "rest" if name else "toplevel"

    def remove(self):
        for h in self.handles:
            h.remove()


@dataclass
class PackRecord:
    ptr: int
    nbytes: int
    shape: tuple
    dtype: str
    module: str
    region: str
    seq: int
    creator: str = ""
    ref: StorageWeakRef | None = None  # the packed storage (a freed one's address can be reused by a later storage)


class SavedTensorRecorder:
    """saved_tensors_hooks that record each packed tensor (identity pack/unpack)."""

    def __init__(
        self, ctx: ModuleContext, excluded_ptrs: set[int], tracker: StorageTracker | None = None, region_override=None
    ):
        self.ctx = ctx
        self.excluded = excluded_ptrs
        self.records: list[PackRecord] = []
        self.tracker = tracker
        self.region_override = region_override  # callable -> str | None (e.g. "head" while the loss runs)
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            ptr, nb = storage_of(t)
            region = None
            if self.region_override is not None:
                region = self.region_override()
            if region is None:
                region = self.ctx.region()
            creator = self.tracker.creator_of(t) if self.tracker is not None else ""
            self.records.append(
                PackRecord(
                    ptr,
                    nb,
                    tuple(t.shape),
                    str(t.dtype).replace("torch.", ""),
                    self.ctx.current,
                    region,
                    len(self.records),
                    creator,
                    StorageWeakRef(t.untyped_storage()),
                )
            )
        return t

    @staticmethod
    def _unpack(t):
        return t

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)

    def unique(self, include_excluded=False) -> dict[int, PackRecord]:
        """First record of each storage (attribution = where it was first packed).

        Records whose storage has been freed since are skipped: the allocator may have given the address to a later
        storage, which must not inherit the freed one's size and module (see freed())."""
        out: dict[int, PackRecord] = {}
        for r in self.records:
            if r.nbytes == 0 or (not include_excluded and r.ptr in self.excluded):
                continue
            if r.ref is not None and r.ref.expired():
                continue
            out.setdefault(r.ptr, r)
        return out

    def freed(self) -> list[PackRecord]:
        """Packed storages already freed (e.g. a graph branch the forward built but did not use), one per storage."""
        out, seen = [], set()
        for r in self.records:
            if r.nbytes == 0 or r.ptr in self.excluded or r.ref is None or not r.ref.expired():
                continue
            key = (r.ptr, r.nbytes, r.module)
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out


@dataclass
class StorageEntry:
    ref: StorageWeakRef
    nbytes: int
    ptr: int
    op: str
    module: str
    region: str
    shape: tuple
    dtype: str
    touched_by: list = field(default_factory=list)


class StorageTracker(TorchDispatchMode):
    """Records every storage produced by an aten op while active (weakly)."""

    def __init__(self, ctx: ModuleContext, excluded_ptrs: set[int]):
        super().__init__()
        self.ctx = ctx
        self.excluded = excluded_ptrs
        self.entries: dict[int, StorageEntry] = {}
        self.phase_tag = None  # extra tag (e.g. "recompute:<i>")
        self.region_override = None
        self.preexisting = None  # another StorageTracker: storages alive in it are not new here
        self.ops_seen: set[str] = set()  # every aten op dispatched (entries can be replaced when an address is reused)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        opname = func.__name__ if hasattr(func, "__name__") else str(func)
        self.ops_seen.add(opname)
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                try:
                    st = t.untyped_storage()
                except Exception:  # pragma: no cover - tensor subclasses without storage
                    continue
                ptr, nb = st.data_ptr(), st.nbytes()
                if nb == 0 or ptr in self.excluded:
                    continue
                if self.preexisting is not None:
                    pe = self.preexisting.entries.get(ptr)
                    if pe is not None and not pe.ref.expired():
                        continue
                e = self.entries.get(ptr)
                if e is not None and not e.ref.expired():
                    e.touched_by.append(opname)
                    continue
                region = None
                if self.region_override is not None:
                    region = self.region_override()
                if region is None:
                    region = self.ctx.region()
                if self.phase_tag:
                    region = self.phase_tag
                self.entries[ptr] = StorageEntry(
                    StorageWeakRef(st),
                    nb,
                    ptr,
                    opname,
                    self.ctx.current,
                    region,
                    tuple(t.shape),
                    str(t.dtype).replace("torch.", ""),
                    [opname],
                )
        return out

    def creator_of(self, t: torch.Tensor) -> str:
        ptr, _ = storage_of(t)
        e = self.entries.get(ptr)
        if e is None or e.ref.expired():
            return "input/param"
        return ",".join(dict.fromkeys(e.touched_by))

    def alive(self, exclude_ptrs=()) -> list[StorageEntry]:
        gc.collect()
        ex = set(exclude_ptrs)
        return [e for e in self.entries.values() if not e.ref.expired() and e.ptr not in ex]

    def reset(self):
        self.entries.clear()


def autograd_graph_saved(root) -> dict[int, list[str]]:
    """Walk the autograd graph from ``root`` (a grad_fn); map storage ptr -> ['NodeName._saved_attr', ...]."""
    out: dict[int, list[str]] = {}
    seen = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = node.name()
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                val = getattr(node, attr)
            except Exception:
                continue
            vals = val if isinstance(val, (tuple, list)) else [val]
            for v in vals:
                if isinstance(v, torch.Tensor):
                    out.setdefault(storage_of(v)[0], []).append(f"{name}.{attr[len('_saved_') :]}")
        if hasattr(node, "saved_tensors"):
            try:
                for v in node.saved_tensors:
                    if isinstance(v, torch.Tensor):
                        out.setdefault(storage_of(v)[0], []).append(f"{name}.saved_tensors")
            except Exception:
                pass
        for nxt, _ in getattr(node, "next_functions", ()):
            if nxt is not None:
                stack.append(nxt)
    return out
