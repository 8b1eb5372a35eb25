"""Text in every script is folded to its letters, not to nothing (audit: `one_of: [Директор]`
and `equals: "Διευθυντής"` matched every value wholly in another non-Latin script, such as
"Студент" or "学生", because both folded to ""; `contains: [директор, ceo]` dropped the
Cyrillic word; `contains: [日本語]` was refused as having no word)."""

from __future__ import annotations

import pytest

from leadscore.domain.matching import fold_text, has_phrase
from leadscore.domain.rules import FitRule


def rule(**test: object) -> FitRule:
    return FitRule.model_validate({"id": "r", "points": 1, "field": "t", **test})


@pytest.mark.parametrize(("text", "folded"), [
    ("Директор", "директор"),
    ("Генеральный-ДИРЕКТОР", "генеральныи директор"),  # a breve drops like an accent
    ("Διευθυντής", "διευθυντησ"),  # casefold: final sigma is sigma
    ("Ἀθῆναι", "αθηναι"),  # accents and breathings dropped, like Latin ones
    ("مُدير", "مدير"),  # Arabic short-vowel marks dropped
    ("学生", "学生"),
    ("ガイド", "ガイド"),  # the kana voicing mark is kept: ガ is not カ
    ("Jefe de Ventas", "jefe de ventas"),
])
def test_letters_of_every_script_survive_folding(text: str, folded: str) -> None:
    assert fold_text(text) == folded


@pytest.mark.parametrize("matcher", [{"one_of": ["Директор"]}, {"equals": "Διευθυντής"},
                                     {"equals": "مدير"}, {"one_of": ["学生"]}])
@pytest.mark.parametrize("other", ["Студент", "学生", "Κάτι άλλο", "طالب", "Student"])
def test_equals_and_one_of_in_one_script_do_not_match_other_words(
        matcher: dict[str, object], other: str) -> None:
    # GIVEN a rule naming a word in a non-Latin script
    test = rule(**matcher)
    wanted = next(iter(matcher.values()))
    word = wanted[0] if isinstance(wanted, list) else wanted
    # WHEN another word is tested THEN no match; the word itself (any case) matches
    assert test.holds({"t": other}) is (other == word)
    assert test.holds({"t": str(word).upper()})


def test_contains_keeps_every_scripts_words_whole() -> None:
    # GIVEN `contains: [директор, ceo]`
    test = rule(contains=["директор", "ceo"])
    # THEN the Cyrillic word counts, whole (not inside a longer word)
    assert test.holds({"t": "Генеральный директор"})
    assert test.holds({"t": "CEO"})
    assert not test.holds({"t": "Директорат"})  # a directorate, not a director
    assert not test.holds({"t": "Студент"})
    assert rule(contains=["مدير"]).holds({"t": "مدير المبيعات"})
    assert not rule(contains=["مدير"]).holds({"t": "طالب"})


def test_contains_in_a_script_without_spaces_matches_as_a_substring() -> None:
    # GIVEN a Japanese / Chinese phrase (written without spaces between words)
    test = rule(contains=["日本語"])
    # THEN it matches inside a longer run of text, not in other text
    assert test.holds({"t": "日本語教師"})
    assert not test.holds({"t": "英語教師"})
    assert rule(contains=["部长"]).holds({"t": "销售部长"})
    assert has_phrase(fold_text("销售部长"), fold_text("部长"))
    assert not has_phrase(fold_text("Marketing Intern"), fold_text("tern"))


@pytest.mark.parametrize("matcher", [{"equals": "!!!"}, {"one_of": ["ceo", "—"]},
                                     {"contains": ["ceo", "-"]}])
def test_a_value_with_no_letter_or_digit_is_refused(matcher: dict[str, object]) -> None:
    # GIVEN a matcher value that folds to nothing (it would match every such value)
    with pytest.raises(ValueError, match="no letter or digit in"):
        rule(**matcher)
