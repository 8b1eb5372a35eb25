"""A claimed signature token is kept as long as a signature carrying it can be accepted."""

from __future__ import annotations

from datetime import timedelta

from leadscore.integrations.hubspot_webhook import TOLERANCE as HUBSPOT_TOLERANCE
from leadscore.providers.base import TOKEN_KEPT, TokenClaim
from leadscore.providers.mailgun import TOLERANCE_S as MAILGUN_TOLERANCE_S
from leadscore.service.ingest import MAX_CLOCK_SKEW


def test_tokens_are_kept_across_the_widest_window_of_the_providers_that_claim_them() -> None:
    # a token first seen at the start of its window (timestamp + tolerance ahead of our
    # clock) is accepted until its end: twice the tolerance, plus our instances' skew
    widest = max(timedelta(seconds=MAILGUN_TOLERANCE_S), HUBSPOT_TOLERANCE)
    assert TOKEN_KEPT >= 2 * widest + MAX_CLOCK_SKEW
    assert TokenClaim("mailgun:t", "owner").kept == TOKEN_KEPT
