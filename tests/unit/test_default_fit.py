"""The default fit rules read real form answers the way a marketer means them."""

from __future__ import annotations

from typing import Any

import pytest
from builders import form
from conftest import NOW

from leadscore.domain.rules import Rules
from leadscore.domain.scoring import apply_events, fit_items


def fit_of(rules: Rules, email: str = "ana@acme.com", **profile: Any) -> dict[str, float]:
    lead, _ = apply_events(None, "l_ana", email, [form(email, "f", NOW, **profile)], rules, NOW)
    return {i.rule.removeprefix("fit."): i.points for i in fit_items(lead, rules)}


def test_a_director_of_international_sales_is_no_student(rules: Rules) -> None:
    # GIVEN a sales director WHEN scored THEN the title bonus applies and no student penalty
    fit = fit_of(rules, job_title="Director of International Sales")
    assert "student" not in fit and "title-decision-maker" in fit


def test_a_doctor_is_no_cto(rules: Rules) -> None:
    assert "title-decision-maker" not in fit_of(rules, job_title="Doctor")
    assert "title-decision-maker" in fit_of(rules, job_title="CTO / Co-Founder")


def test_5000_empleados_counts_as_5000_employees(rules: Rules) -> None:
    # GIVEN a Spanish form answer with a dot grouping thousands
    fit = fit_of(rules, company_size="5.000 empleados", seniority="VP")
    # THEN it is a large company, and a VP there is an enterprise decision maker
    assert {"company-size-large", "enterprise-decision-maker"} <= set(fit)
    assert "company-size-tiny" not in fit
    assert "company-size-mid" in fit_of(rules, company_size="51-200")


@pytest.mark.parametrize(("email", "profile", "present", "absent"), [
    ("ana@gmail.com", {}, {"free-mail"}, {"competitor"}),
    ("ana@acme.com", {}, set(), {"free-mail"}),
    ("sam@gmail.com", {"job_title": "Student"}, {"student"}, {"free-mail"}),
    ("rep@eu.hubspot.com", {}, {"competitor"}, {"free-mail"}),
    ("ana@acme.com", {"country": "España"}, {"target-country"}, set()),
    ("ana@acme.com", {"country": "Sweden"}, set(), {"target-country"}),
])
def test_free_mail_competitors_and_countries(rules: Rules, email: str, profile: dict[str, str],
                                             present: set[str], absent: set[str]) -> None:
    fit = fit_of(rules, email, **profile)
    assert present <= set(fit) and not absent & set(fit), fit
    if "free-mail" in present:
        assert fit["free-mail"] == -5
