"""Running on several devices with JAX's own SPMD engine (``jax.sharding``).

Two layouts, one argument (``devices=``) each:

* **rows** (:func:`jaxnmf.fit`): V and W are split by rows across the devices, H is
  replicated. XLA's partitioner then computes ``V Hᵀ`` and ``W (H Hᵀ)`` locally and reduces
  ``Wᵀ V`` and ``Wᵀ W`` across devices: the communication pattern of distributed NMF
  (MPI-FAUN / PLANC), written as shardings instead of messages.
* **members** (:func:`jaxnmf.sweep`): the sweep's (loss, rank, seed) members are split across
  devices; V is replicated.

Rows that do not divide evenly are padded with zero rows of V and W. A zero row of V with a
zero row of W stays zero under every solver (its gradient is zero and multiplicative updates
keep zeros) and adds nothing to the objective, so the padded problem has the same solution;
initial factors are drawn on the unpadded V, so results match the single-device run up to
the order of floating-point reductions.

Several hosts (processes): call ``jax.distributed.initialize()`` in every process first;
``jax.devices()`` then lists the devices of all of them, and ``devices=jax.devices()`` spans
them. Every process runs the same call with the same data; :func:`place` builds each
process's shards from its copy (``jax.device_put`` refuses devices of other processes), and
:func:`gather` brings a result that spans processes back whole to every process
(``tests/test_multiprocess.py`` runs this with 2 processes).
"""
# ruff: noqa: N803

from __future__ import annotations

import numbers

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def resolve(devices) -> list | None:
    """``None`` (one device, the default: no sharding at all), or a list of ≥ 2 devices.

    ``devices`` may be ``None``, an int (the first n of ``jax.devices()``) or a sequence of
    devices.
    """
    if devices is None:
        return None
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices}, but JAX sees {len(available)} device(s): {available}"
            )
        devices = available[:devices]
    else:
        try:
            devices = list(devices)
        except TypeError:
            raise TypeError(
                f"devices must be None, an int or a sequence of jax devices, got {devices!r}"
            ) from None
        if not devices or not all(isinstance(d, jax.Device) for d in devices):
            raise TypeError(f"devices must be jax devices (see jax.devices()), got {devices!r}")
    return devices if len(devices) > 1 else None


def mesh(devices, axis: str) -> Mesh:
    return Mesh(np.array(devices), (axis,))


def pad_rows(X: np.ndarray, multiple: int) -> np.ndarray:
    """X with zero rows appended so that its row count is a multiple of ``multiple``."""
    extra = -X.shape[0] % multiple
    if extra == 0:
        return X
    return np.concatenate([X, np.zeros((extra, *X.shape[1:]), X.dtype)])


def place(x, sharding: NamedSharding):
    """``x`` (the same value in every process) placed with ``sharding``.

    One process: ``jax.device_put``. Several (``sharding`` spans devices of other
    processes, which ``device_put`` refuses): each process builds its own shards from its
    copy (``jax.make_array_from_callback``); PRNG key arrays travel as their key data.
    """
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        data = place(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=impl)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def gather(tree):
    """Every array leaf of ``tree`` whole in this process: leaves that span devices of other
    processes are all-gathered (``multihost_utils.process_allgather``, a collective: every
    process must call it), the others returned as they are."""

    def whole(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return multihost_utils.process_allgather(x, tiled=True)
        return x

    return jax.tree.map(whole, tree)


def split_rows(X, mesh_: Mesh):
    """Place ``X`` (rows divisible by the mesh size) split by rows across the mesh."""
    return place(X, NamedSharding(mesh_, P(mesh_.axis_names[0], None)))


def replicate(tree, mesh_: Mesh):
    """Place every leaf of ``tree`` whole on every device of the mesh."""
    spec = NamedSharding(mesh_, P())
    return jax.tree.map(lambda x: place(x, spec), tree)


def split_leading(tree, mesh_: Mesh):
    """Place every leaf of ``tree`` split along its leading axis across the mesh."""
    spec = NamedSharding(mesh_, P(mesh_.axis_names[0]))
    return jax.tree.map(lambda x: place(x, spec), tree)
