"""Any optax optimizer followed by projection onto the non-negative orthant."""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import optax

from ..losses import Loss
from ._base import keep_active


@dataclasses.dataclass(frozen=True)
class Projected:
    """Simultaneous update of (W, H) by any ``optax.GradientTransformation``, then
    projection onto ``W, H ≥ 0`` (``optax.projections.projection_non_negative``).

    The gradient is the loss's own (``pos - neg``; ``jax.grad`` for custom terms). Create the
    optimizer once and reuse it: solvers are static, and optimizers compare by identity, so a
    new ``optax.adam(1e-2)`` per call recompiles.
    """

    optimizer: Any = None
    name: str = "projected"

    def check(self, loss: Loss, has_mask: bool) -> None:
        del loss, has_mask
        if not isinstance(self.optimizer, optax.GradientTransformation):
            raise TypeError(
                f"projected() needs an optax.GradientTransformation, got {self.optimizer!r}"
            )

    def init(self, problem, W, H):
        # optax mixes Python floats and int32 internally; keep it working for users who run
        # JAX with strict dtype promotion.
        with jax.numpy_dtype_promotion("standard"):
            return self.optimizer.init((W, H))

    def step(self, problem, W, H, extra):
        V, mask, loss, active = problem[:4]
        grads = (loss.grad(V, W, H, mask, "W"), loss.grad(V, W, H, mask, "H"))
        with jax.numpy_dtype_promotion("standard"):
            updates, extra = self.optimizer.update(grads, extra, (W, H))
            W, H = optax.apply_updates((W, H), updates)
            W, H = optax.projections.projection_non_negative((W, H))
        W, H = keep_active(W, H, active)
        return W, H, extra, None
