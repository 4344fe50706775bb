"""Joining or starting a Ray cluster, for the backends that run on one (optional extra ``ray``).

Ray is not a dependency of prefrl: every use goes through :func:`import_ray`, which names
the extra when it is missing. :func:`connect` joins the cluster at an address, or starts
a private one on this machine bound to loopback only (a local cluster never listens on
an external interface).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from types import ModuleType

from prefrl.errors import ConfigError, PrefrlError

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "pip install 'prefrl[ray]' (or: pip install ray)"


class RayMissingError(PrefrlError):
    """Ray was asked for and is not installed."""


class RayConnectError(PrefrlError):
    """The Ray cluster at the address given cannot be joined."""


def import_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`RayMissingError` that names the extra."""
    try:
        import ray
    except ImportError:
        raise RayMissingError(f"this needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_START_HINT = (
    f"start one with 'ray start --head --node-ip-address {LOOPBACK} --port 6379' "
    "(docs/ray.md), or leave the address out for a cluster on this machine alone"
)


def _check_reachable(address: str, timeout_s: float = 5.0) -> str | None:
    """The host of a ``HOST:PORT`` address once something listens there (None for
    ``"auto"``): Ray itself would wait minutes before it gives up on a wrong address."""
    if address == "auto":
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address {address!r}: give HOST:PORT (e.g. 127.0.0.1:6379) or 'auto'")
    host = host.strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise RayConnectError(f"no Ray cluster answers at {address} ({err}); {_START_HINT}") from None
    return host


def check_ready(address: str | None = None) -> None:
    """Raise now, before a run writes anything, if :func:`connect` would fail: Ray is
    missing, or nothing listens at ``address``."""
    import_ray()
    if address is not None:
        _check_reachable(address)


@contextlib.contextmanager
def connect(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, initialised for the duration of the ``with`` block.

    Args:
        address: ``HOST:PORT`` of a running cluster (``ray start --head`` prints it), or
            ``"auto"`` for the cluster this machine's ``ray start`` joined; None: a private
            cluster on this machine, on loopback, shut down at the end of the block.
        num_cpus: CPUs of a private cluster (default: this machine's); an error with an
            address (a cluster's CPUs are set where its nodes start).

    If this process has Ray initialised already (a caller's own ``ray.init``), that
    connection is used as it is and left open.

    Raises:
        RayMissingError: Ray is not installed.
        RayConnectError: nothing answers at ``address``.
        ConfigError: ``num_cpus`` together with an address, or below 1.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"num_cpus must be at least 1, not {num_cpus}")
    if address is not None and num_cpus is not None:
        raise ConfigError("num_cpus is set where a cluster's nodes start (ray start --num-cpus), not here")
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address is None:
        # "local": a new cluster even where other ones run on this machine (ray.init with no
        # address would join the newest of them)
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address=LOOPBACK)
    else:
        host = _check_reachable(address)
        kwargs["address"] = address
        if host in _LOOPBACK_NAMES:  # this machine's nodes, started on loopback
            kwargs["_node_ip_address"] = LOOPBACK
    try:
        ray.init(**kwargs)
    except ConnectionError as err:
        hint = _START_HINT
        if address is not None and "RAY_AUTH_MODE" not in os.environ:
            hint = (  # something listens there: a Ray 2.60 head refuses a driver without its token
                "if Ray's log above says InvalidAuthToken, the cluster wants its token: copy the head's "
                "~/.ray/auth_token to this machine and export RAY_AUTH_MODE=token (docs/ray.md)"
            )
        raise RayConnectError(f"cannot join the Ray cluster at {address}: {err}; {hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
