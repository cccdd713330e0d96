"""Test configuration: float64 on, strict dtype promotion, no implicit rank promotion.

x64 must be set before any JAX array exists, so it is set at import time, once.
Shared data makers and NumPy oracles live in ``jaxnmf/_testing.py``.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
