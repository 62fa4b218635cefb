"""The text engine: pages and their [SEP] text, actions, limits, oracle, hints, progress, tasks."""

from __future__ import annotations

import pytest

import agentgym
from agentgym.core.checker import check_text_env
from agentgym.core.task import generate_split
from envs.webshop.env import WebShopEnv
from envs.webshop.search import shared_search


def play(env, actions):
    out = None
    for action in actions:
        out = env.step(action)
    return out


@pytest.fixture
def tiny_env(tiny_dir):
    env = WebShopEnv(data_dir=str(tiny_dir), goals="synthetic", split="test", show_actions=False)
    task = next(
        env.book.task(i)
        for i, g in enumerate(env.book.goals)
        if g.asin == "B0SOCKS001" and g.goal_options == {"color": "black", "size": "large"}
    )
    obs, _ = env.reset(options={"task": task})
    return env, obs["content"]


def test_pages_read_as_the_original_text_mode(tiny_env):
    env, first = tiny_env
    goal = env.goal.instruction_text
    assert first == f"WebShop [SEP] Instruction: [SEP] {goal} [SEP] Search"
    obs, *_ = env.step("search[Wool Socks]")
    text = obs["content"]
    assert text.startswith(
        f"Instruction: [SEP] {goal} [SEP] Back to Search [SEP] Page 1 (Total results: 2) [SEP] Next > [SEP] "
    )
    assert "B0SOCKS001 [SEP] Wool Hiking Socks [SEP] $12.0" in text
    assert "B0SOCKS002 [SEP] Cotton Dress Socks [SEP] $55.0 to $60.0" in text
    obs, *_ = env.step("click[b0socks001]")
    assert obs["content"] == (
        f"Instruction: [SEP] {goal} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] black [SEP] charcoal grey "
        "[SEP] size [SEP] large [SEP] small [SEP] Wool Hiking Socks [SEP] Price: $12.0 [SEP] Rating: N.A. "
        "[SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    obs, *_ = env.step("click[Features]")
    assert obs["content"].endswith("< Prev [SEP] Cushioned sole for long hikes.")
    obs, *_ = env.step("click[< prev]")
    assert obs["content"].endswith("Buy Now")


def test_purchase_ends_the_episode_with_the_reward_and_its_parts(tiny_env):
    env, _ = tiny_env
    obs, reward, term, trunc, info = play(
        env,
        ["search[wool socks]", "click[b0socks001]", "click[charcoal grey]", "click[large]", "click[buy now]"],
    )
    assert term and not trunc and reward == pytest.approx(0.8) and info["success"] is False
    assert obs["content"] == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 0.8"
    assert info["reward_parts"]["n_opt_match"] == 1 and info["reward_parts"]["r_type"] == 1.0
    assert info["purchased"] == {"asin": "B0SOCKS001", "options": {"color": "charcoal grey", "size": "large"}}
    assert info["goal_index"] == env.task.metadata["goal_index"]


def test_choosing_an_option_again_replaces_it(tiny_env):
    env, _ = tiny_env
    play(
        env,
        ["search[wool socks]", "click[b0socks001]", "click[charcoal grey]", "click[black]", "click[large]"],
    )
    assert env.state.options_dict == {"color": "black", "size": "large"}
    *_, reward, _term, _, info = play(env, ["click[buy now]"])
    assert reward == 1.0 and info["success"] is True


def test_invalid_actions_change_nothing(tiny_env):
    env, first = tiny_env
    for action in ["click[buy now]", "click[search]", "hello", "", "search[]", "click[b0socks001]"]:
        obs, reward, term, _trunc, info = env.step(action)
        assert info["invalid_action"] and not term and reward == 0.0
        assert env.page.text == first
    assert info["invalid_actions"] == 6
    env.step("search[socks]")
    obs, _, _, _, info = env.step("search[mug]")  # no search box on a results page
    assert info["invalid_action"] and "no search box" in obs["content"]
    obs, _, _, _, info = env.step("search[a] click[next >]")  # one action per step
    assert env.state.kind == "results" and info["invalid_action"]


def test_pagination_and_back_to_search():
    env = WebShopEnv(split="test", show_actions=False)
    env.reset(seed=0)
    env.step("search[made]")  # in every description: the search returns its maximum of 50
    assert "Page 1 (Total results: 50) [SEP] Next >" in env.page.text and "< Prev" not in env.page.text
    for page in range(2, 7):
        env.step("click[next >]")
        assert f"Page {page} (Total results: 50) [SEP] < Prev [SEP] Next >" in env.page.text
    assert sum(n.kind == "link" for n in env.page.nodes) == 0  # past the last page: no products
    env.step("click[< prev]")
    assert sum(n.kind == "link" for n in env.page.nodes) == 10
    env.step("click[back to search]")
    assert env.page.has_search_box and env.state.kind == "search"


def test_step_limit_truncates_without_reward():
    env = WebShopEnv(split="test")
    env.reset(seed=1)
    for _ in range(14):
        assert not env.step("click[nothing]")[3]
    _obs, reward, term, trunc, info = env.step("click[nothing]")
    assert trunc and not term and reward == 0.0 and info["success"] is False and env.turn == 15


@pytest.mark.parametrize("goals", ["human", "synthetic"])
def test_oracle_buys_every_test_goal_perfectly(goals):
    env = WebShopEnv(goals=goals, split="test")
    rewards = []
    for i in range(len(env._indices)):
        env.reset(options={"task": env.generate_task(i)})
        progress = [env.progress()]
        while not env.done:
            env.step(env.oracle_action())
            progress.append(env.progress())
        assert progress == sorted(progress) and progress[-1] == 1.0  # monotone along the oracle's path
        rewards.append(env.page.reward.reward)
    assert len(rewards) == 100 and min(rewards) == 1.0


def test_random_policy_scores_low():
    from agentgym.eval import evaluate

    result = evaluate("webshop_test", "scripted:random", num_tasks=40, progress=False)
    assert result.success_rate <= 0.1
    assert result.results["overall"]["mean_reward"] < 0.4


def test_oracle_suite_through_the_eval_runner():
    from agentgym.eval import evaluate

    result = evaluate("webshop_test", "scripted:oracle", num_tasks=20, progress=False)
    assert result.success_rate == 1.0
    assert {t.task_id.split("-")[0] for t in result.trajectories} == {"human", "synthetic"}


def test_hint_names_what_is_missing(tiny_env):
    env, _ = tiny_env
    hint = env.hint()
    assert "merino wool" in hint and "moisture wicking" in hint and "color: black" in hint
    play(env, ["search[socks]", "click[b0socks002]"])
    assert "lacks: merino wool, moisture wicking" in env.hint()
    play(env, ["click[< prev]", "click[b0socks001]", "click[black]"])
    hint = env.hint()
    assert "lacks" not in hint and "color: black" not in hint and "size: large" in hint


def test_progress_follows_the_reward_parts(tiny_env):
    env, _ = tiny_env
    assert env.progress() == 0.0
    env.step("search[socks]")
    assert env.progress() == pytest.approx(1 / 3)  # a result of the goal's type was listed
    env.step("click[b0socks002]")
    assert env.progress() == pytest.approx(1 / 3)  # same type, but the attributes miss
    play(env, ["click[< prev]", "click[b0socks001]"])
    assert env.progress() == pytest.approx(2 / 3)
    env.step("click[black]")
    assert env.progress() == pytest.approx(2 / 3 + 0.5 / 3)


def test_valid_actions(tiny_env):
    env, _ = tiny_env
    assert env.valid_actions() == ["search[i want merino wool socks with color: black, and size: large]"]
    env.step("search[socks]")
    actions = env.valid_actions()
    assert actions[:2] == ["click[back to search]", "click[next >]"]
    assert sorted(actions[2:]) == ["click[b0socks001]", "click[b0socks002]"]  # in BM25 order
    _obs, *_ = env.step("click[b0socks001]")
    assert "click[charcoal grey]" in env.valid_actions() and "click[buy now]" in env.valid_actions()


def test_observation_lists_valid_actions_by_default():
    env = agentgym.make("webshop/v0", split="test")
    obs, info = env.reset(seed=3)
    assert obs["content"].endswith("\n\nValid actions: search[<query>]")
    assert {t["function"]["name"] for t in info["tools"]} == {"search", "click"}


def test_tasks_splits_and_sharing():
    test_env = WebShopEnv(split="test")
    train_env = WebShopEnv(split="train")
    eval_env = WebShopEnv(split="eval")
    assert test_env.catalog is train_env.catalog and test_env.shop.search is shared_search(test_env.catalog)
    test_ids = {t.id for t in generate_split(test_env.generate_task, split="test", count=100)}
    assert len(test_ids) == 100 and test_ids == {f"human-{i}" for i in range(100)}
    train = [train_env.generate_task(i) for i in range(0, 500, 7)]
    assert all(t.metadata["goal_split"] == "train" and t.metadata["goal_index"] >= 200 for t in train)
    assert eval_env.generate_task(0).metadata["goal_index"] == 100
    _obs, info = train_env.reset(seed=5)
    assert train_env.task.metadata["goal_split"] == "train" and info["task_id"] == train_env.task.id


def test_bad_arguments_are_user_errors(tmp_path):
    from agentgym.errors import UserError

    with pytest.raises(UserError, match="split"):
        WebShopEnv(split="dev")
    with pytest.raises(UserError, match="goals"):
        WebShopEnv(goals="robots")
    with pytest.raises(UserError, match="backend"):
        WebShopEnv(backend="whoosh")
    with pytest.raises(UserError, match="does not exist"):
        WebShopEnv(data_dir=str(tmp_path / "nope"))


def test_passes_the_env_checker():
    results = check_text_env(lambda: WebShopEnv(split="test"), fuzz_actions=300, time_budget_s=20)
    assert all(r.passed for r in results), [(r.name, r.detail) for r in results if not r.passed]


def test_throughput_benchmark_runs_small():
    from benchmarks.throughput_webshop import measure

    result = measure(products=300, episodes=3, queries=10)
    assert result["large"]["products"] == 300 and result["shipped"]["products"] == 125
    for side in ("shipped", "large"):
        assert result[side]["step"]["p50_ms"] > 0 and result[side]["search"]["qps"] > 0


def test_reset_by_goal_index_and_the_originals_argument_names():
    env = WebShopEnv(human_goals=False, split="train")
    _obs, info = env.reset(options={"goal_index": 7})  # a test goal, asked for by index
    assert info["task_id"] == "synthetic-7" and env.goal == env.book.goals[7]
    from agentgym.errors import UserError

    with pytest.raises(UserError, match="goal_index"):
        env.reset(options={"goal_index": 10**6})


def test_one_set_of_files_per_folder(tiny_dir):
    from agentgym.errors import UserError
    from tests.webshop.conftest import write_official

    write_official(tiny_dir, suffix="")
    with pytest.raises(UserError, match="several items_shuffle"):
        WebShopEnv(data_dir=str(tiny_dir))
