"""Beyond one process: rollout workers and vLLM engines as Ray actors (docs/distributed.md).

:mod:`~agentgym.distributed.config` (the ``distributed:`` section), :mod:`~agentgym.distributed.
cluster` (join or start Ray, leave nothing behind), :mod:`~agentgym.distributed.worker` (the
rollout worker actor), :mod:`~agentgym.distributed.rollouts` (the driver's engine over the
workers, restarts included), :mod:`~agentgym.distributed.sync` (weights to the workers),
:mod:`~agentgym.distributed.engines` (vLLM engines as actors on GPUs), :mod:`~agentgym.
distributed.driver` (what the trainer holds). Ray is imported only when a run uses it.
"""
