"""Weight sync: after each learner step the rollout policy generates with the new weights.

One protocol, three ways, chosen from where the policy's weights live
(:meth:`~agentgym.policy.base.TrainablePolicy.weights`):

* ``shared`` — an hf policy generates with the learner's module itself: nothing to copy. The
  learner holds the policy's lock while the optimizer writes; ``publish`` tells the policy
  (``commit``: its version moves on, its prefix cache of the old weights is dropped) in the
  same torch-thread job as the step, so no generation runs in between.
* ``copy`` — the learner trains its own copy; ``publish`` copies it into the policy's module
  under the policy's lock, then commits, in the same job.
* ``push`` — the policy's engine holds its own copy (vLLM): ``publish`` takes the learner's
  full state dict (LoRA merged) on the torch thread, ``apublish`` awaits
  ``policy.update_weights(state)`` (in memory: :mod:`agentgym.policy.vllm_weights`). When the
  engine shares the learner's GPU, ``before_step`` puts it to sleep (its weights and KV cache
  leave the GPU) and the update wakes it.

The trainer awaits ``sync.before_step()``, runs ``sync.prepare()``, ``learner.step(samples,
update_lock=sync.update_lock)`` and ``sync.publish()`` as one job on the torch thread, then
awaits ``sync.apublish()``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from agentgym.policy.base import LocalWeights, TrainablePolicy


class WeightSync:
    """How new weights reach the rollout policy (see the module docstring)."""

    mode = ""
    #: Held by the learner while the optimizer writes the weights (a module generation shares).
    update_lock: Any = None

    def __init__(self, policy: TrainablePolicy, learner_model: Any, state_fn: Callable[[], dict[str, Any]] | None = None):
        """``state_fn``: where the learner's full weights come from when the model is sharded over ranks
        (:mod:`agentgym.train.parallel`); by default the model's own state dict (LoRA merged)."""
        self.policy = policy
        self.learner_model = learner_model
        self.state_fn = state_fn

    def learner_state(self) -> dict[str, Any]:
        """The learner's full weights by HF name (on the torch thread)."""
        return self.state_fn() if self.state_fn is not None else merged_state_dict(self.learner_model)

    async def before_step(self) -> None:
        """Before the learner step (e.g. free the GPU the rollout engine shares with the learner)."""

    def prepare(self) -> None:
        """The torch-thread part before the learner step, in its job: free what the step will make
        stale (an hf policy's prefix cache), so that it does not add to the step's peak memory."""

    def publish(self) -> None:
        """The torch-thread part, in the same job as the learner step."""

    async def apublish(self, version: int | None = None) -> None:
        """The event-loop part, after that job; ``version``: the policy version the weights become."""


class SharedSync(WeightSync):
    mode = "shared"

    def __init__(self, policy: TrainablePolicy, learner_model: Any, handle: LocalWeights):
        super().__init__(policy, learner_model)
        self.handle = handle
        self.update_lock = handle.lock

    def prepare(self) -> None:
        self.handle.drop_caches()

    def publish(self) -> None:
        self.handle.commit()


class CopySync(WeightSync):
    mode = "copy"

    def __init__(self, policy: TrainablePolicy, learner_model: Any, handle: LocalWeights,
                 state_fn: Callable[[], dict[str, Any]] | None = None):
        super().__init__(policy, learner_model, state_fn)
        self.handle = handle

    def prepare(self) -> None:
        self.handle.drop_caches()

    def publish(self) -> None:
        import torch

        src = self.state_fn() if self.state_fn is not None else dict(self.learner_model.named_parameters())
        with self.handle.lock, torch.no_grad():
            for name, p in self.handle.module.named_parameters():
                p.copy_(src[name])
        self.handle.commit()


class PushSync(WeightSync):
    mode = "push"

    def __init__(self, policy: TrainablePolicy, learner_model: Any, *, colocated: bool = False,
                 state_fn: Callable[[], dict[str, Any]] | None = None):
        super().__init__(policy, learner_model, state_fn)
        self.colocated = colocated
        self._state: dict[str, Any] | None = None

    async def before_step(self) -> None:
        sleep = getattr(self.policy, "sleep", None)
        if self.colocated and callable(sleep):
            await sleep()  # no-op unless the engine was started with sleep mode

    def publish(self) -> None:
        self._state = self.learner_state()

    async def apublish(self, version: int | None = None) -> None:
        state, self._state = self._state, None
        if state is not None:
            await self.policy.update_weights(state)


def merged_state_dict(model: Any) -> dict[str, Any]:
    """Full weights for a push (LoRA merged into a copy)."""
    merge = getattr(model, "merge_and_unload", None)  # peft's wrapper; a plain module has none
    if callable(merge):
        model = copy.deepcopy(model).merge_and_unload()
    return {k: v.detach() for k, v in model.state_dict().items()}
