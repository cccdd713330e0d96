"""jaxnmf: non-negative matrix factorization in JAX.

``V (m × n, ≥ 0) ≈ W (m × k) · H (k × n)``, ``W, H ≥ 0``, for any β-divergence plus
penalties, by multiplicative updates, HALS, Lin's projected gradient or any optax optimizer,
all run by one jit-compiled driver with one stopping rule. See ``README.md`` and
``DESIGN.md`` for the public API.
"""

from . import init as init
from . import losses as losses
from . import metrics as metrics
from . import solvers as solvers
from .api import FitResult as FitResult
from .api import Status as Status
from .api import fit as fit
from .rank_selection import RankTable as RankTable
from .rank_selection import rank_selection as rank_selection
from .sweep import SweepResult as SweepResult
from .sweep import sweep as sweep

__version__ = "0.1.0"

__all__ = [
    "FitResult",
    "RankTable",
    "Status",
    "SweepResult",
    "__version__",
    "fit",
    "init",
    "losses",
    "metrics",
    "rank_selection",
    "solvers",
    "sweep",
]
