"""``jaxnmf.compare``: several solvers under one harness.

Every solver starts from the same initial factors per seed, stops by the same rule
(:mod:`jaxnmf._driver`) and reports the same diagnostics: the objective after every iteration,
the wall-clock seconds and the KKT residual at checkpoints, and the final relative error.

Timing: the compiled loop of each solver runs in chunks of ``chunk`` iterations (the same
compiled program for every chunk: the chunk end is a traced argument, and the iterates do not
depend on it), and the host reads the clock after each chunk has finished
(``block_until_ready``). Compilation happens before, ahead of time, and is reported apart. The
KKT residual at a checkpoint is computed after the clock is read, so it costs the solvers
nothing.
"""
# ruff: noqa: N803, N806

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile, _driver, _run, _sparse, _validate
from . import api as _api
from .api import Status
from .metrics import relative_error
from .solvers import Problem, as_solver

__all__ = ["CompareResult", "SolverTrace", "compare"]


@dataclasses.dataclass
class SolverTrace:
    """One solver's runs, one row per seed.

    Attributes:
      name: the solver's label in the comparison.
      losses: ``(n_seeds, max_iter)`` objective after each iteration, NaN after ``n_iter``.
      n_iter: ``(n_seeds,)``; status: list of :class:`~jaxnmf.Status`.
      checkpoint_iter: ``(n_seeds, n_checkpoints)`` iteration counts at the checkpoints,
        starting with 0 (-1 pads seeds that stopped earlier).
      checkpoint_seconds: run time (compilation excluded) at those checkpoints, NaN-padded.
      checkpoint_kkt: KKT residual (projected-gradient norm) at those checkpoints.
      rel_error: ``(n_seeds,)`` final ``‖M∘(V - WH)‖_F / ‖M∘V‖_F``.
      final_loss: ``(n_seeds,)`` objective at the result: the last finite one, as
        :attr:`jaxnmf.FitResult.loss` (a ``nonfinite`` run's last history entry is not).
      compile_seconds: ahead-of-time compilation of this solver's loop.
      W, H: ``(n_seeds, m, k)``, ``(n_seeds, k, n)`` final factors.
    """

    name: str
    losses: np.ndarray
    n_iter: np.ndarray
    status: list
    checkpoint_iter: np.ndarray
    checkpoint_seconds: np.ndarray
    checkpoint_kkt: np.ndarray
    rel_error: np.ndarray
    compile_seconds: float
    W: np.ndarray
    H: np.ndarray
    final_loss: np.ndarray

    def __repr__(self) -> str:
        return (
            f"SolverTrace(name={self.name!r}, seeds={len(self.n_iter)}, "
            f"n_iter={[int(n) for n in self.n_iter]}, status={[str(s) for s in self.status]}, "
            f"final_loss=[{', '.join(f'{x:.6g}' for x in self.final_loss)}], "
            f"compile_seconds={self.compile_seconds:.3g})"
        )

    def seconds_per_iteration(self) -> np.ndarray:
        """``(n_seeds, max_iter)``: run seconds at the end of each iteration, interpolated
        linearly between checkpoints (NaN after ``n_iter``)."""
        out = np.full(self.losses.shape, np.nan)
        for s in range(len(self.n_iter)):
            ok = self.checkpoint_iter[s] >= 0
            its, secs = self.checkpoint_iter[s][ok], self.checkpoint_seconds[s][ok]
            n = int(self.n_iter[s])
            out[s, :n] = np.interp(np.arange(1, n + 1), its, secs)
        return out


@dataclasses.dataclass
class CompareResult:
    """The traces of every solver, from the same initial factors (``initial_loss`` per seed)."""

    traces: dict
    seeds: list
    rank: int
    initial_loss: np.ndarray
    W0: np.ndarray
    H0: np.ndarray

    def __repr__(self) -> str:
        traces = ",\n  ".join(repr(t) for t in self.traces.values())
        return f"CompareResult(rank={self.rank}, seeds={list(self.seeds)},\n  {traces})"

    def __getitem__(self, name: str) -> SolverTrace:
        return self.traces[name]

    @property
    def names(self) -> list[str]:
        return list(self.traces)

    def best_loss(self) -> float:
        """The lowest objective any solver reached on any seed."""
        return float(min(np.nanmin(t.losses) for t in self.traces.values()))

    def plot(self, **kwargs):
        """Objective vs iteration and vs seconds; see :func:`jaxnmf.plotting.plot_compare`."""
        from .plotting import plot_compare

        return plot_compare(self, **kwargs)


@jax.jit
def _kkt(V, mask, loss, W, H):
    """The KKT residual at a checkpoint (computed after the clock is read)."""
    k = W.shape[1]
    problem = Problem(V, mask, loss, jnp.ones((k,), bool), _sparse.sq_norm(V))
    return _driver.kkt_residual(problem, W, H)


def _labels(solvers) -> dict:
    """``{label: solver}``; solvers of one name (``pg(max_inner=5)``, ``pg()``) are labelled
    ``pg``, ``pg#2``, ...; the same solver twice is refused (its runs would be identical)."""
    if isinstance(solvers, dict):
        return {str(k): as_solver(v) for k, v in solvers.items()}
    if isinstance(solvers, str):
        solvers = [solvers]
    out = {}
    for s in solvers:
        obj = as_solver(s)
        if obj in out.values():
            raise ValueError(f"solvers: {s!r} is given twice; each solver runs once per seed")
        name = s if isinstance(s, str) else obj.name
        label, i = name, 2
        while label in out:
            label, i = f"{name}#{i}", i + 1
        out[label] = obj
    return out


def compare(
    V,
    rank: int,
    solvers=("mu", "pg", "hals"),
    *,
    loss="frobenius",
    seeds=range(5),
    init="random",
    max_iter: int = 200,
    tol: float = 1e-4,
    mask=None,
    chunk: int = 10,
    eval_every: int = 1,
) -> CompareResult:
    """Run several solvers from the same initial factors, with the same stopping rule.

    Args:
      V: data ``(m, n)``, dense or sparse (as in :func:`jaxnmf.fit`); rank: number of
        components.
      solvers: names, solver objects, or a ``{label: solver}`` dict.
      loss, max_iter, tol, mask, eval_every: as in :func:`jaxnmf.fit`, shared by every solver.
      seeds: one run per solver and seed; seed ``s`` gives the initial factors that
        ``jaxnmf.fit(V, rank, init=init, seed=s)`` starts from.
      init: a method name (a pair ``(W0, H0)`` is used for every seed).
      chunk: iterations between clock readings.

    Returns:
      A :class:`CompareResult`; ``result["hals"].losses[i]`` is the trace that
      ``jaxnmf.fit(V, rank, solver="hals", seed=seeds[i], ...).losses`` gives.

    Examples:
      >>> import numpy as np, jaxnmf as jn
      >>> V = np.random.default_rng(0).random((30, 20)).astype(np.float32)
      >>> cmp = jn.compare(V, 3, solvers=["mu", "hals"], seeds=range(2), max_iter=30)
      >>> cmp["hals"].losses.shape
      (2, 30)
    """
    labels = _labels(solvers)
    if not labels:
        raise ValueError("compare needs at least one solver")
    req = _api.request(
        V, rank, loss=loss, solver=next(iter(labels.values())), mask=mask, init=init,
        max_iter=max_iter, tol=tol, eval_every=eval_every,
    )  # fmt: skip
    for solver in labels.values():
        solver.check(req.loss, req.mask is not None)
    # Fitted on V / max V as in fit (jaxnmf._scale); traces are mapped back to V's units.
    V, mask, loss, scaling = req.V, req.mask, req.fit_loss, req.scaling
    max_iter, rank = req.options.max_iter, int(rank)
    chunk = _validate.positive_int(chunk, "chunk")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    keys = [_validate.seed_key(seed) for seed in seeds]
    _validate.distinct(seeds, "seeds")

    starts = []
    for key in keys:
        if req.method == "given":
            starts.append((jnp.asarray(req.W0), jnp.asarray(req.H0)))
        else:
            starts.append(_api.initial_factors(V, mask, key, rank=rank, method=req.method))
    hyper = req.hyper()
    member = lambda W0, H0: _run.Member(loss, rank=np.int32(rank), W0=W0, H0=H0)

    traces = {}
    initial_loss = np.zeros(len(seeds))
    sq_norm = _sparse.sq_norm(V)  # the rounding scale of the divergence check (verdict)
    n_chunks = -(-max_iter // chunk) + 1
    for label, solver in labels.items():
        spec = req.spec(rank, solver=solver, method="given", track_kkt=False, mode=_run.START)
        start_args = (V, mask, member(*starts[0]), hyper)
        start_c, seconds_start = _compile.compiled(_run.run_compiled, start_args, dict(spec=spec))
        state0 = start_c(*start_args)
        spec_advance = dataclasses.replace(spec, mode=_run.ADVANCE)
        advance_args = (V, mask, member(None, None), hyper, state0, np.int32(0))
        advance_c, seconds_advance = _compile.compiled(
            _run.run_compiled, advance_args, dict(spec=spec_advance)
        )
        compile_seconds = seconds_start + seconds_advance

        losses = np.full((len(seeds), max_iter), np.nan)
        cp_iter = np.full((len(seeds), n_chunks), -1, np.int64)
        cp_sec = np.full((len(seeds), n_chunks), np.nan)
        cp_kkt = np.full((len(seeds), n_chunks), np.nan)
        n_iter, status, rel, Ws, Hs, final = [], [], [], [], [], []
        for i, (W0, H0) in enumerate(starts):
            state = start_c(V, mask, member(W0, H0), hyper)
            jax.block_until_ready(state)
            initial_loss[i] = float(scaling.objective(state.loss0))
            cp_iter[i, 0], cp_sec[i, 0] = 0, 0.0
            cp_kkt[i, 0] = float(_kkt(V, mask, loss, W0, H0))
            elapsed, j = 0.0, 1
            while int(state.status) == _driver.Code.RUNNING:
                stop_at = np.int32(min(int(state.it) + chunk, max_iter))
                t0 = time.perf_counter()
                state = advance_c(V, mask, member(None, None), hyper, state, stop_at)
                jax.block_until_ready(state)
                elapsed += time.perf_counter() - t0
                cp_iter[i, j], cp_sec[i, j] = int(state.it), elapsed
                cp_kkt[i, j] = float(_kkt(V, mask, loss, state.W, state.H))
                j += 1
            code = _driver.verdict(
                state.status, state.loss, state.loss0, cp_kkt[i, j - 1], state.W, state.H, sq_norm
            )
            state = jax.device_get(state)
            k = int(state.it)
            losses[i, :k] = scaling.objective(state.history[:k])
            n_iter.append(k)
            status.append(Status.from_code(code))
            final.append(float(scaling.objective(state.loss)))
            W, H = np.asarray(state.W), np.asarray(state.H)  # relative error: scale-free
            Ws.append(W)
            Hs.append(H)
            if isinstance(V, _sparse.SparseMatrix):  # from the stored entries, O(nnz k)
                rel.append(float(relative_error(V, W, H, mask)))
            else:
                M = np.ones_like(V) if mask is None else mask
                Vd = np.asarray(V, np.float64)
                resid = M * (Vd - W.astype(np.float64) @ H.astype(np.float64)) ** 2
                rel.append(float(np.sqrt(resid.sum() / np.sum(M * Vd**2))))
        W_all, H_all = scaling.factors_out(np.stack(Ws), np.stack(Hs))
        traces[label] = SolverTrace(
            name=label,
            losses=losses,
            n_iter=np.asarray(n_iter),
            status=status,
            checkpoint_iter=cp_iter,
            checkpoint_seconds=cp_sec,
            checkpoint_kkt=scaling.kkt(cp_kkt),
            rel_error=np.asarray(rel),
            compile_seconds=compile_seconds,
            W=W_all,
            H=H_all,
            final_loss=np.asarray(final),
        )
    W0, H0 = scaling.factors_out(
        np.stack([np.asarray(w) for w, _ in starts]), np.stack([np.asarray(h) for _, h in starts])
    )
    return CompareResult(
        traces=traces, seeds=seeds, rank=rank, initial_loss=initial_loss, W0=W0, H0=H0
    )
