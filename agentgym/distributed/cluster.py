"""Joining or starting the Ray cluster a run uses, and leaving nothing behind.

A run with ``distributed.address: null`` starts a local cluster (with an explicit object-store
size: Ray's default takes 30% of the machine's memory) and stops it when the run ends, also
after a crash; a run given an address joins that cluster and leaves it running. When this
process already called ``ray.init`` (a test's fixture, a notebook), the run uses that cluster
and leaves it to its owner.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from agentgym.distributed.config import DistributedConfig
from agentgym.errors import UserError, require

log = logging.getLogger(__name__)


@dataclass
class Cluster:
    """The cluster a run uses; ``owned``: started by this run, so :meth:`shutdown` stops it."""

    owned: bool
    namespace: str

    def shutdown(self) -> None:
        """Stop the cluster if this run started it (its raylet, GCS and workers go with it)."""
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False


def connect(config: DistributedConfig, namespace: str = "agentgym") -> Cluster:
    """Join ``config.address``, start a local cluster, or reuse this process's; see the module docstring."""
    ray = require("ray", "distributed", "rollout workers on Ray")
    if ray.is_initialized():
        return Cluster(owned=False, namespace=ray.get_runtime_context().namespace)
    env_vars = {"PYTHONPATH": _python_path()}
    kwargs: dict = {"namespace": namespace, "include_dashboard": False, "log_to_driver": True,
                    "runtime_env": {"env_vars": env_vars}}
    if config.address is None:
        kwargs.update(num_cpus=config.num_cpus, object_store_memory=config.object_store_mb * 2**20)
    else:
        kwargs["address"] = config.address
        kwargs.pop("runtime_env")  # a cluster's nodes have their own installation
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise UserError(f"cannot reach the Ray cluster at {config.address!r} ({exc}); start it with "
                        "`ray start --head` or set distributed.address: null for a local one.") from exc
    log.info("ray: %s cluster, namespace %s", "local" if config.address is None else config.address, namespace)
    return Cluster(owned=config.address is None, namespace=namespace)


def _python_path() -> str:
    """This process's import path for local workers (a source checkout on PYTHONPATH, the cwd)."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for p in sys.path:
        if p and os.path.isdir(p) and p not in parts and "site-packages" not in p and "lib/python" not in p:
            parts.append(p)
    cwd = os.getcwd()
    if cwd not in parts:
        parts.append(cwd)
    return os.pathsep.join(parts)
