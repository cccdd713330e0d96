"""Initial factors: random (scikit-learn's scaling) and NNDSVD variants.

Every initializer returns ``W0`` ``(m, k_max)`` and ``H0`` ``(k_max, n)`` whose components
``j >= rank`` are exactly zero, so that a rank sweep can pad every member to one width
``k_max``. Component ``j`` is drawn from ``fold_in(key, j)``: the factors of (rank r, seed s)
do not depend on ``k_max`` nor on which other ranks are being fitted.

References:
    Boutsidis, C. & Gallopoulos, E. (2008). SVD based initialization: A head start for
    nonnegative matrix factorization. Pattern Recognition 41(4).
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["METHODS", "initialize", "nndsvd", "random"]

METHODS = ("random", "nndsvd", "nndsvda", "nndsvdar")

# Entries of the NNDSVD factors below this are set to zero (as in the reference code).
_NNDSVD_EPS = 1e-6


def component_mask(k_max: int, rank):
    """``(k_max,)`` bool: components ``< rank`` are active. ``rank`` may be traced (a sweep
    vmaps over it)."""
    return jnp.arange(k_max, dtype=jnp.int32) < jnp.asarray(rank, jnp.int32)


def _observed_mean(V, mask):
    if mask is None:
        return jnp.mean(V)
    return jnp.sum(mask * V) / jnp.sum(mask)


def _fill_missing(V, mask):
    """V with missing entries replaced by the observed mean (for the SVD of NNDSVD)."""
    if mask is None:
        return V
    return jnp.where(mask > 0, V, _observed_mean(V, mask))


def random(V, key, k_max: int, rank, mask=None):
    """|N(0, 1)| · sqrt(mean(V) / rank), as scikit-learn's ``init="random"``.

    The mean is over the observed entries when a ``mask`` is given.

    Args:
      V: data, shape ``(m, n)``.
      key: a ``jax.random.key``.
      k_max: static width of the factors.
      rank: active rank (≤ k_max; may be traced).
      mask: optional ``(m, n)`` entry weights (0 = missing).

    Returns:
      ``(W0, H0)`` with shapes ``(m, k_max)``, ``(k_max, n)``.
    """
    m, n = V.shape
    dtype = V.dtype
    scale = jnp.sqrt(_observed_mean(V, mask) / jnp.asarray(rank, dtype))

    def component(j):
        kw, kh = jax.random.split(jax.random.fold_in(key, j))
        return jax.random.normal(kw, (m,), dtype), jax.random.normal(kh, (n,), dtype)

    w_cols, h_rows = jax.vmap(component)(jnp.arange(k_max))
    active = component_mask(k_max, rank)
    W0 = jnp.where(active[None, :], scale * jnp.abs(w_cols.T), 0)
    H0 = jnp.where(active[:, None], scale * jnp.abs(h_rows), 0)
    return W0, H0


def nndsvd(V, key, k_max: int, rank, variant: str = "nndsvd", mask=None):
    """Non-negative double SVD (Boutsidis & Gallopoulos 2008).

    Each singular triplet (u_j, s_j, v_j) is replaced by the larger (in norm product) of its
    positive and negative parts, which is non-negative. ``variant``:

    * ``"nndsvd"``: zeros stay zeros (good for sparse factors; MU cannot move them);
    * ``"nndsvda"``: zeros are filled with mean(V);
    * ``"nndsvdar"``: zeros are filled with |N(0,1)| · mean(V) / 100 (component-keyed).

    The SVD is taken once at width ``k_max``, so a sweep over ranks shares it. Missing entries
    (``mask == 0``) are filled with the observed mean before the SVD.
    """
    V = _fill_missing(V, mask)
    m, n = V.shape
    U, S, Vt = jnp.linalg.svd(V, full_matrices=False)
    U, S, Vt = U[:, :k_max], S[:k_max], Vt[:k_max, :]

    def part(x, y):
        xp, yp = jnp.maximum(x, 0), jnp.maximum(y, 0)
        xn, yn = jnp.maximum(-x, 0), jnp.maximum(-y, 0)
        nxp, nyp, nxn, nyn = (jnp.linalg.norm(a) for a in (xp, yp, xn, yn))
        use_pos = nxp * nyp > nxn * nyn
        # A zero norm only happens when the other part is chosen; guard the division anyway.
        tiny = jnp.finfo(x.dtype).tiny
        u = jnp.where(use_pos, xp / jnp.maximum(nxp, tiny), xn / jnp.maximum(nxn, tiny))
        v = jnp.where(use_pos, yp / jnp.maximum(nyp, tiny), yn / jnp.maximum(nyn, tiny))
        sigma = jnp.where(use_pos, nxp * nyp, nxn * nyn)
        return u, v, sigma

    u, v, sigma = jax.vmap(part, in_axes=(1, 0))(U, Vt)  # u: (k, m), v: (k, n)
    lam = jnp.sqrt(S * sigma)
    # The leading triplet of a non-negative matrix is one-signed (Perron–Frobenius); the
    # reference code takes |u_0|, |v_0| directly, which the part-selection reproduces.
    W0 = (lam[:, None] * u).T
    H0 = lam[:, None] * v
    W0 = jnp.where(W0 < _NNDSVD_EPS, 0, W0)
    H0 = jnp.where(H0 < _NNDSVD_EPS, 0, H0)

    avg = jnp.mean(V)
    if variant == "nndsvda":
        W0 = jnp.where(W0 == 0, avg, W0)
        H0 = jnp.where(H0 == 0, avg, H0)
    elif variant == "nndsvdar":

        def noise(j):
            kw, kh = jax.random.split(jax.random.fold_in(key, j))
            return jax.random.normal(kw, (m,), V.dtype), jax.random.normal(kh, (n,), V.dtype)

        w_noise, h_noise = jax.vmap(noise)(jnp.arange(k_max))
        W0 = jnp.where(W0 == 0, jnp.abs(avg * w_noise.T / 100), W0)
        H0 = jnp.where(H0 == 0, jnp.abs(avg * h_noise / 100), H0)

    active = component_mask(k_max, rank)
    return jnp.where(active[None, :], W0, 0), jnp.where(active[:, None], H0, 0)


def initialize(V, key, k_max: int, rank, method: str, mask=None):
    """Dispatch on ``method`` (static): one of :data:`METHODS`."""
    if method == "random":
        return random(V, key, k_max, rank, mask)
    if method in ("nndsvd", "nndsvda", "nndsvdar"):
        return nndsvd(V, key, k_max, rank, method, mask)
    raise ValueError(f"unknown init {method!r}; expected one of {METHODS} or a pair (W0, H0)")
