"""Fit matching reads values the way people type them: words, numbers, countries, domains."""

from __future__ import annotations

import pytest
import yaml

from leadscore.domain.matching import country_code, read_number
from leadscore.domain.rules import FitRule, parse_rules
from leadscore.errors import RulesError


def rule(**test: object) -> FitRule:
    return FitRule.model_validate({"id": "r", "points": 1, **test})


@pytest.mark.parametrize(("title", "phrase", "hit"), [
    ("Director of International Sales", "intern", False),
    ("Marketing Intern", "intern", True),
    ("Doctor", "cto", False),
    ("CTO/Founder", "cto", True),
    ("Jefe de ventas", "jefe", True),
    ("Head of Marketing", "head of", True),
    ("Headhunter of talent", "head of", False),
    ("Directora de Ingeniería", "ingenieria", True),
    ("C-Level", "c level", True),
])
def test_contains_matches_whole_words_and_phrases_folded(title: str, phrase: str,
                                                         hit: bool) -> None:
    # GIVEN a contains rule on the job title WHEN a title is tested THEN only whole words hit
    assert rule(field="job_title", contains=[phrase]).holds({"job_title": title}) is hit


@pytest.mark.parametrize(("text", "number"), [
    ("5.000", 5000), ("5,000", 5000), ("5 000", 5000), ("5\u00a0000", 5000),
    ("5.000 empleados", 5000), ("1.234.567", 1234567), ("5,5", 5.5), ("1.25", 1.25),
    ("0.500", 0.5), ("1.234,5", 1234.5), ("1,234.5", 1234.5), ("$10M", 10_000_000),
    ("10k", 10_000), ("10K EUR", 10_000), ("$1.5bn", 1_500_000_000), ("2 mil", 2000),
    ("3 millones", 3_000_000), ("51-200", 51), ("51 to 200", 51), ("1-10M", 1_000_000),
    ("1000+", 1000), ("10 months", 10), ("-5", -5),
])
def test_numbers_are_read_with_grouping_suffixes_and_ranges(text: str, number: float) -> None:
    assert read_number(text) == pytest.approx(number)


def test_a_value_without_digits_is_no_number() -> None:
    assert read_number("n/a") is None
    assert not rule(field="company_size", range={"min": 0}).holds({"company_size": "many"})


@pytest.mark.parametrize(("written", "code"), [
    ("Spain", "ES"), ("españa", "ES"), ("ESP", "ES"), ("es", "ES"), ("Deutschland", "DE"),
    ("United Kingdom", "GB"), ("UK", "GB"), ("United States of America", "US"),
    ("Kingdom of Spain", "ES"), ("Narnia", None),
])
def test_countries_read_as_alpha_2_codes(written: str, code: str | None) -> None:
    assert country_code(written) == code


def test_country_rules_accept_names_and_codes_on_both_sides() -> None:
    # GIVEN a rule written with a code and a name
    target = rule(field="country", one_of=["es", "United States"])
    # THEN every spelling of those countries matches, and no other country
    for value in ("Spain", "España", "ESP", "US", "usa", "United States of America"):
        assert target.holds({"country": value}), value
    assert not target.holds({"country": "France"})


def test_email_domains_match_subdomains_and_the_free_mail_list() -> None:
    competitor = rule(email_domain=["hubspot.com"])
    free = rule(email_domain={"free_mail": True})
    listed = rule(field="email_domain", one_of=["hubspot.com"])
    assert competitor.holds({"email_domain": "eu.hubspot.com"})
    assert listed.holds({"email_domain": "eu.hubspot.com"})
    assert not competitor.holds({"email_domain": "nothubspot.com"})
    assert free.holds({"email_domain": "gmail.com"}) and free.holds({"email_domain": "GMX.de"})
    assert not free.holds({"email_domain": "acme-analytics.io"})


def test_matches_is_a_case_insensitive_regular_expression_on_a_bounded_value() -> None:
    vp = rule(field="job_title", matches=r"\bv\.?p\.?\b")
    assert vp.holds({"job_title": "V.P. Sales"}) and not vp.holds({"job_title": "VPN admin"})
    tail = rule(field="job_title", matches=r"needle$")
    assert not tail.holds({"job_title": "x" * 10_000 + "needle"})  # read up to 256 chars


def test_conditions_combine_field_tests() -> None:
    # GIVEN an enterprise decision maker rule, with a not
    enterprise = rule(all=[{"field": "company_size", "range": {"min": 1000}},
                           {"any": [{"field": "seniority", "one_of": ["vp", "c-level"]},
                                    {"field": "job_title", "contains": ["chief"]}]},
                           {"not": {"email_domain": {"free_mail": True}}}])
    big_vp = {"company_size": "5.000 empleados", "seniority": "VP",
              "email_domain": "acme.com"}
    # THEN it holds only when every part does
    assert enterprise.holds(big_vp)
    assert enterprise.holds({**big_vp, "seniority": "", "job_title": "Chief Revenue Officer"})
    assert not enterprise.holds({**big_vp, "company_size": "51-200"})
    assert not enterprise.holds({**big_vp, "email_domain": "gmail.com"})
    assert not enterprise.holds({"company_size": 2000})  # a missing field is no match


def _rules_with(fit: list[dict[str, object]]) -> str:
    return yaml.safe_dump({"version": "t", "engagement_half_life_days": 45,
                           "stages": {"mql": 40, "sql": 80}, "fit": fit})


@pytest.mark.parametrize(("fit", "message"), [
    ({"id": "x", "field": "size", "range": {"min": 9, "max": 1}},
     'fit rule "x": field "range": min is greater than max'),
    ({"id": "x", "all": [{"field": "a", "equals": "b"},
                         {"field": "size", "range": {"min": 9, "max": 1}}]},
     'fit rule "x": field "all.1.range": min is greater than max'),
    ({"id": "x", "field": "t", "matches": "ab["},
     'fit rule "x": field "matches": not a valid regular expression'),
    ({"id": "x", "field": "t", "matches": r"(a)\1"},
     'fit rule "x": field "matches": RE2, the linear-time engine'),
    ({"id": "x", "field": "country", "one_of": ["Spain", "Narnia"]},
     'fit rule "x": field "one_of": unknown country: Narnia'),
    ({"id": "x", "email_domain": {"free_mail": False}},
     'fit rule "x": field "email_domain": give domains'),
    ({"id": "x", "any": [{"field": "a"}]}, 'fit rule "x": field "any.0": give exactly one'),
    ({"id": "x", "not": {"not": {"not": {"not": {"not": {"field": "a", "equals": "b"}}}}}},
     'fit rule "x": conditions nest 5 deep'),
    ({"id": "x", "field": "a", "equals": "b", "all": [{"field": "a", "equals": "b"}]},
     'fit rule "x": give one of all, any, not'),
])
def test_rules_check_explains_each_new_construct(fit: dict[str, object], message: str) -> None:
    # GIVEN a rules file with one bad fit rule WHEN it is parsed THEN the message names it
    with pytest.raises(RulesError) as raised:
        parse_rules(_rules_with([{**fit, "points": 1}]), "mine.yaml")
    messages = [d["message"] for d in raised.value.details]
    assert any(m.startswith(message) for m in messages), messages
