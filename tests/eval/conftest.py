from tests.rollout.conftest import CountEnv, OraclePolicy  # noqa: F401  (registers testcount/v0)
