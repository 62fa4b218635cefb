"""``agentgym train``'s checks before any model loads (also what ``--print-config`` runs).

Every training env and every eval env is built once through the run's env factory
(:func:`agentgym.core.preflight.check_env`), an eval suite is resolved, the policy spec is
parsed and the run folder is checked writable. A mistake ends as one line naming the file
and key (``configs/x.yaml: envs.0.id: unknown environment 'maze-esy/v0'. Did you mean
'maze-easy/v0'?``) within seconds, instead of after minutes of loading and failed episodes.
"""

from __future__ import annotations

import asyncio

from agentgym.core.factory import env_factory
from agentgym.core.preflight import check_env, check_writable_dir
from agentgym.errors import UserError
from agentgym.train.config import TrainConfig
from agentgym.train.sampling import env_kwargs


def preflight(config: TrainConfig, source: str = "config") -> None:
    """Run every check (blocking; see the module docstring); ``source`` names the config file."""
    asyncio.run(apreflight(config, source))


async def apreflight(config: TrainConfig, source: str = "config") -> None:
    """:func:`preflight` inside an event loop."""
    from agentgym.policy.load import parse_policy_spec

    if config.distributed is not None and config.distributed.worker_setup:
        from agentgym.distributed.driver import RayDriver

        RayDriver(config).prepare()  # registers the envs the workers will have
    try:
        parse_policy_spec(config.model.policy)
    except UserError as exc:
        raise UserError(f"{source}: model.policy: {exc}") from exc
    check_writable_dir(config.run_path, where=f"{source}: run_dir")
    try:
        factory = env_factory(config.env_factory)
    except UserError as exc:
        raise UserError(f"{source}: env_factory: {exc}") from exc
    try:
        for i, entry in enumerate(config.envs):
            await check_env(factory, entry.id, env_kwargs(entry, config.rollout.max_turns, "train"),
                            where=f"{source}: envs.{i}")
        ev = config.eval
        if ev.at_start or ev.at_end or ev.every:
            await _check_eval(config, factory, source)
    finally:
        await factory.aclose()


async def _check_eval(config: TrainConfig, factory, source: str) -> None:
    from agentgym.eval.suite import load_suite

    ev = config.eval
    if ev.suite:
        try:
            suite = await asyncio.to_thread(load_suite, ev.suite)
        except UserError as exc:
            raise UserError(f"{source}: eval.suite: {exc}") from exc
        for i, entry in enumerate(suite.envs):
            await check_env(factory, entry.id, entry.env_kwargs(), where=f"{suite.source}: envs.{i}")
    for i, entry in enumerate(ev.envs or []):
        await check_env(factory, entry.id, env_kwargs(entry, config.rollout.max_turns, ev.split),
                        where=f"{source}: eval.envs.{i}")
