"""An exponential moving average of a model's weights (Polyak averaging), used for sampling and
evaluation when ``train.ema_decay`` is set: after every training step, for every floating-point
tensor of the state dict, ``shadow <- d * shadow + (1 - d) * weight``; other tensors (step
counters) are copied. The shadow starts from the initial weights, and ``d`` warms up as in
TensorFlow's ``ExponentialMovingAverage(num_updates=...)``: at the update after ``n`` earlier ones,
``d = min(decay, (1 + n) / (10 + n))``, so a short run's average is not mostly its initial weights
(at decay 0.999 the warm-up ends after ~9,000 updates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self._cached: tuple[nn.Module, tuple[list[Tensor], list[Tensor], list[str]]] | None
        self._cached = None
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }

    def rate(self) -> float:
        """The decay the next update uses (the warm-up's, until it reaches ``decay``)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    def _params(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor], list[str]]:
        """The parameters' shadows, the parameters, the buffers' names: built once per model.

        Parameters are kept as the objects themselves (``keep_vars``: a ``load_state_dict``
        copies into them and a ``.to()`` swaps their ``.data``, both seen through the object), so
        a step costs one fused lerp, not a state dict and two kernels per tensor. Buffers are
        looked up by name at every update: a ``.to()`` replaces them with new objects."""
        if self._cached is None or self._cached[0] is not model:
            shadows, params, buffers = [], [], []
            for name, value in model.state_dict(keep_vars=True).items():
                if isinstance(value, nn.Parameter) and value.dtype.is_floating_point:
                    shadows.append(self.shadow[name])
                    params.append(value)
                else:
                    buffers.append(name)
            self._cached = (model, (shadows, params, buffers))
        return self._cached[1]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.rate()
        shadows, params, buffers = self._params(model)
        if shadows:  # shadow + (1 - d) (w - shadow) = d shadow + (1 - d) w
            torch._foreach_lerp_(shadows, params, 1 - d)
        for name in buffers:
            module, _, attr = name.rpartition(".")
            shadow, value = self.shadow[name], getattr(model.get_submodule(module), attr)
            if shadow.dtype.is_floating_point:
                shadow.lerp_(value, 1 - d)
            else:
                shadow.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights: a model's state dict (the update count is ``updates``)."""
        return self.shadow

    def load_state_dict(self, state: dict[str, Tensor], updates: int | None = None) -> None:
        """``updates`` None (a checkpoint from before the warm-up): taken as warmed up."""
        for name, value in state.items():
            self.shadow[name].copy_(value)
        self.updates = updates if updates is not None else 10 * round(1 / (1 - self.decay))

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with the averaged weights inside the block, its own ones after it."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(own)
