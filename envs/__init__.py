"""The built-in environments. Each subpackage registers itself through the
``agentgym.envs`` entry-point group, exactly as a third-party package would."""
