from agentgym.rewards.verifiable import contains_answer, exact_match, normalize_answer, token_f1


def test_normalize_answer_is_squad_style():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a day") == "apple day"


def test_exact_match_over_several_golds():
    assert exact_match("the Nile.", ["Amazon", "Nile"]) == 1.0
    assert exact_match("Nile river", "Nile") == 0.0


def test_token_f1():
    assert token_f1("Jane Austen", "Jane Austen") == 1.0
    assert abs(token_f1("Austen", "Jane Austen") - 2 / 3) < 1e-9
    assert token_f1("nothing shared", ["Jane Austen"]) == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0


def test_contains_answer_whole_words():
    assert contains_answer("It is the Pacific Ocean, by far.", ["pacific ocean"]) == 1.0
    assert contains_answer("Pacifically speaking", "pacific") == 0.0
