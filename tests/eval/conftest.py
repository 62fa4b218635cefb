from tests.rollout.conftest import CountEnv, OraclePolicy, count_move, transcript  # noqa: F401  (registers testcount/v0)
