"""Data makers and independent NumPy oracles for the test suite (not public API).

The oracles are written from the papers' formulas in plain NumPy, independently of
:mod:`jaxnmf.losses`, so a test comparing the two can fail.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import numpy as np


def planted(m=24, n=18, k=3, seed=0, dtype=np.float64):
    """An exactly rank-k non-negative ``V = W* H*``, with its factors."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, k)) + 0.1
    H = rng.random((k, n)) + 0.1
    return (W @ H).astype(dtype), W.astype(dtype), H.astype(dtype)


def positive_data(m=24, n=18, seed=0, dtype=np.float64):
    """Strictly positive dense data (valid for every β, including β ≤ 0)."""
    return (np.random.default_rng(seed).random((m, n)) + 0.05).astype(dtype)


def random_factors(m, n, k, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed + 1000)
    return (rng.random((m, k)) + 0.1).astype(dtype), (rng.random((k, n)) + 0.1).astype(dtype)


def np_beta_divergence(V, WH, beta, M=None):
    """Σ M d_β(V | WH) from the textbook definition (Févotte & Idier 2011, eq. 2)."""
    M = np.ones_like(V) if M is None else M
    if beta == 2:
        d = 0.5 * (V - WH) ** 2
    elif beta == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(V > 0, V * np.log(V / WH), 0.0) - V + WH
    elif beta == 0:
        d = V / WH - np.log(V / WH) - 1
    else:
        d = (V**beta + (beta - 1) * WH**beta - beta * V * WH ** (beta - 1)) / (beta * (beta - 1))
    return float(np.sum(M * d))


def np_mu_step(V, W, H, beta, l1_W=0.0, l1_H=0.0, l2_W=0.0, l2_H=0.0, M=None):
    """One MU iteration (W then H) for the β-divergence with penalties, from the formulas:
    X <- X · ((M∘V∘(WH)^(β-2)) Hᵀ / ((M∘(WH)^(β-1)) Hᵀ + l1 + l2 X))^γ(β)."""
    M = np.ones_like(V) if M is None else M
    gamma = 1 / (2 - beta) if beta < 1 else (1 / (beta - 1) if beta > 2 else 1.0)
    WH = W @ H
    num = (M * V * WH ** (beta - 2)) @ H.T
    den = (M * WH ** (beta - 1)) @ H.T + l1_W + l2_W * W
    W = W * (num / den) ** gamma
    WH = W @ H
    num = W.T @ (M * V * WH ** (beta - 2))
    den = W.T @ (M * WH ** (beta - 1)) + l1_H + l2_H * H
    H = H * (num / den) ** gamma
    return W, H
