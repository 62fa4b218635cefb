"""The learner: async multi-turn GRPO over agentgym environments (``agentgym train``)."""
