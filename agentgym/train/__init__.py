"""Training: config, model set-up, weight sync, task sampling, the scoring-to-learning loop, credit
assignment (the only place advantages are computed), the off-policy correction for stripped
guidance, the learner, checkpoints and metrics. Start with :func:`agentgym.train.loop.train`."""
