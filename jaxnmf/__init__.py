"""jaxnmf: non-negative matrix factorization in JAX.

``V (m × n, ≥ 0) ≈ W (m × k) · H (k × n)``, ``W, H ≥ 0``, for any β-divergence plus
penalties, by multiplicative updates, HALS, Lin's projected gradient or any optax optimizer,
all run by one jit-compiled driver with one stopping rule. See ``README.md`` and
``DESIGN.md`` for the public API.
"""

from . import datasets as datasets
from . import init as init
from . import losses as losses
from . import metrics as metrics
from . import plotting as plotting
from . import solvers as solvers
from ._compile import enable_compilation_cache as enable_compilation_cache
from ._stream import StreamError as StreamError
from .api import FitResult as FitResult
from .api import Status as Status
from .api import fit as fit
from .compare import CompareResult as CompareResult
from .compare import compare as compare
from .consensus import ConsensusResult as ConsensusResult
from .consensus import consensus as consensus
from .minibatch import MiniBatchResult as MiniBatchResult
from .minibatch import fit_minibatch as fit_minibatch
from .rank_selection import RankTable as RankTable
from .rank_selection import rank_selection as rank_selection
from .sweep import SweepResult as SweepResult
from .sweep import sweep as sweep

__version__ = "0.1.0"


def __getattr__(name):
    # The scikit-learn estimator is imported on first use: importing scikit-learn costs more
    # than the rest of jaxnmf together, and most uses of jaxnmf never need it.
    if name == "NMF":
        from .estimator import NMF

        return NMF
    if name == "MiniBatchNMF":
        from ._minibatch_estimator import MiniBatchNMF

        return MiniBatchNMF
    raise AttributeError(f"module 'jaxnmf' has no attribute {name!r}")


__all__ = [
    "NMF",
    "CompareResult",
    "ConsensusResult",
    "FitResult",
    "MiniBatchNMF",
    "MiniBatchResult",
    "RankTable",
    "Status",
    "StreamError",
    "SweepResult",
    "__version__",
    "compare",
    "consensus",
    "datasets",
    "enable_compilation_cache",
    "fit",
    "fit_minibatch",
    "init",
    "losses",
    "metrics",
    "plotting",
    "rank_selection",
    "solvers",
    "sweep",
]
