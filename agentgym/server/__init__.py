"""Environments on other hosts: ``agentgym serve-envs`` and the remote env factory.

The server (:class:`EnvServer`) hosts registered environments over OpenEnv's WebSocket
protocol (:mod:`agentgym.server.messages`); :class:`RemoteEnvFactory` (the env factory spec
``remote:ws://HOST:PORT[,ws://HOST2:PORT2...]``) gives the rollout engine
:class:`RemoteEnv` s that implement the async env protocol over one session each.
"""

from agentgym.server.app import EnvServer, start_server
from agentgym.server.client import RemoteEnv, RemoteEnvError
from agentgym.server.remote import RemoteEnvFactory

__all__ = ["EnvServer", "RemoteEnv", "RemoteEnvError", "RemoteEnvFactory", "start_server"]
