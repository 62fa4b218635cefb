"""Environments on other hosts: ``agentgym serve-envs`` and the remote env factory.

The server (:class:`EnvServer`) hosts registered environments over OpenEnv's WebSocket
protocol (:mod:`agentgym.server.messages`).
"""

from agentgym.server.app import EnvServer, start_server

__all__ = ["EnvServer", "start_server"]
