"""The README's picture of the Slack card is drawn from the real payload of a test lead.

`LEADSCORE_RENDER_CARD=1 .venv/bin/python -m pytest tests/integrations/test_slack_picture.py`
refreshes docs/slack-card.png with headless Chromium; the normal run checks the HTML only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fakes.slack_render import render

from integrations.test_slack import mql_card
from leadscore.domain.rules import Rules
from leadscore.integrations.slack import SlackNotifier, message_for

PICTURE = Path(__file__).parents[2] / "docs" / "slack-card.png"


def card_message(rules: Rules) -> dict:  # type: ignore[type-arg]
    card = mql_card(rules)
    links = SlackNotifier("https://hooks.slack.com/services/x",
                          action_url="https://leads.example.com/sales_action",
                          action_secret="demo", clock=lambda: 0).links(card)
    return message_for(card, links)


def test_the_card_renders_with_who_why_and_what(rules: Rules) -> None:
    page = render(card_message(rules))
    for words in ("MQL: Ana Pereira", "Requested a demo", "Visited the pricing page (x2)",
                  "Industry: retail", "Recent activity", "Open in dashboard", "Accept",
                  "2026-11-21 12:00 UTC"):
        assert words in page


@pytest.mark.skipif(os.environ.get("LEADSCORE_RENDER_CARD") != "1",
                    reason="set LEADSCORE_RENDER_CARD=1 to redraw docs/slack-card.png")
def test_draw_the_readme_picture(rules: Rules, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed to draw the picture"
    page = tmp_path / "card.html"
    page.write_text(render(card_message(rules)))
    PICTURE.parent.mkdir(exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={PICTURE}", "--window-size=680,480",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    assert PICTURE.stat().st_size > 10_000
