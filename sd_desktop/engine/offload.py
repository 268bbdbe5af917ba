"""Running a model on a GPU too small to hold all of it at once.

With sequential offload only the network in use (text encoder, UNet or VAE) sits
on the GPU; the others wait in CPU memory. Their CPU copies are made once, in
pinned memory where CUDA is available, and never change: moving a network to
the GPU copies those tensors up, and moving it back just points its parameters
at the CPU copies again, so nothing is copied down.

SD 1.5 at 512x512 in fp16 then needs the UNet (1.7 GB) plus its activations on
the GPU, well under 4 GB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from .devices import total_device_memory
from .errors import InvalidRequestError

OffloadMode = Literal["none", "sequential"]
OFFLOAD_MODES: tuple[str, ...] = ("auto", "none", "sequential")

# GPUs with less memory than this get sequential offload when the mode is "auto".
SEQUENTIAL_BELOW_BYTES = 6 * 1024**3


def choose_offload(mode: str, device: torch.device, total_memory: int | None = None) -> OffloadMode:
    """Resolve "auto" from the GPU's total memory (CPU and MPS: "none").

    An explicit choice is kept on any device; "sequential" on the CPU moves nothing
    but runs the same bookkeeping, which is how the tests exercise it.
    """
    mode = (mode or "auto").lower()
    if mode not in OFFLOAD_MODES:
        raise InvalidRequestError(f"Unknown offload mode '{mode}': use auto, none or sequential.")
    if mode != "auto":
        return mode  # type: ignore[return-value]
    if device.type != "cuda":
        return "none"
    memory = total_device_memory(device) if total_memory is None else total_memory
    if memory is not None and memory < SEQUENTIAL_BELOW_BYTES:
        return "sequential"
    return "none"


Slot = tuple[list[tuple[nn.Module, str]], bool]


def _slots(module: nn.Module) -> Iterator[Slot]:
    """([(owner, name), ...], is_parameter) per tensor; a shared parameter is one slot
    with every place that holds it, so it stays shared after moving."""
    params: dict[int, list[tuple[nn.Module, str]]] = {}
    for owner in module.modules():
        for name, param in owner._parameters.items():
            if param is not None:
                params.setdefault(id(param), []).append((owner, name))
        for name, buf in owner._buffers.items():
            if buf is not None:
                yield [(owner, name)], False
    for places in params.values():
        yield places, True


class SequentialOffloader:
    """Keeps at most one of several networks on the compute device.

    Networks are registered with their weights on the CPU (the home device);
    `activate(name)` brings that one to `device` and sends the previous one home.
    `pin` decides whether the home copies are page-locked (faster, asynchronous
    uploads); it defaults to whether CUDA is available.
    """

    def __init__(self, device: torch.device, *, pin: bool | None = None) -> None:
        self.device = device
        self.pin = torch.cuda.is_available() if pin is None else pin
        self._homes: dict[str, list[tuple[Slot, torch.Tensor]]] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.active: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._homes)

    def add(self, name: str, module: nn.Module, *, hook: bool = False) -> None:
        """Take charge of `module` (its weights on the CPU); with `hook`, calling the
        module activates it first, so callers that just call it need not know."""
        if name in self._homes:
            raise ValueError(f"{name!r} is already offloaded")
        home = []
        for slot in list(_slots(module)):
            owner, attr = slot[0][0]
            tensor = getattr(owner, attr).detach()
            if tensor.device.type != "cpu":
                tensor = tensor.to("cpu")
            if self.pin and not tensor.is_pinned():
                tensor = tensor.pin_memory()  # one tensor at a time: bounded extra memory
            _place(slot, tensor)
            home.append((slot, tensor))
        self._homes[name] = home
        if hook:
            self._hooks.append(module.register_forward_pre_hook(lambda _m, _a: self.activate(name)))

    def activate(self, name: str) -> None:
        """Bring `name` to the compute device, sending whatever was there home first."""
        if name not in self._homes:
            raise KeyError(f"{name!r} is not offloaded here (have {', '.join(self._homes)})")
        if self.active == name:
            return
        self.release()
        for slot, tensor in self._homes[name]:
            _place(slot, tensor.to(self.device, non_blocking=self.pin))
        self.active = name

    def release(self) -> None:
        """Send the active network home; its device copies are freed."""
        if self.active is None:
            return
        for slot, tensor in self._homes[self.active]:
            _place(slot, tensor)
        self.active = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def convert(self, name: str, dtype: torch.dtype) -> None:
        """Change the floating-point home copies of `name` to `dtype` (re-uploading it if
        it is active), e.g. to run the VAE in fp32 after it overflowed in fp16."""
        was_active = self.active == name
        if was_active:
            self.release()
        converted = []
        for slot, tensor in self._homes[name]:
            if tensor.is_floating_point() and tensor.dtype != dtype:
                tensor = tensor.to(dtype)
                if self.pin:
                    tensor = tensor.pin_memory()
                _place(slot, tensor)
            converted.append((slot, tensor))
        self._homes[name] = converted
        if was_active:
            self.activate(name)

    def detach(self) -> None:
        """Remove the call hooks (the networks stay where they are)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()


def _place(slot: Slot, tensor: torch.Tensor) -> None:
    """Put `tensor` in every place of the slot (a new frozen Parameter for parameters)."""
    places, is_param = slot
    value: torch.Tensor = nn.Parameter(tensor, requires_grad=False) if is_param else tensor
    for owner, attr in places:
        if is_param:
            owner._parameters[attr] = value  # type: ignore[assignment]
        else:
            owner._buffers[attr] = value
