"""Entry points through the functions-framework's own test client, on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from signatures import SendGridSigner, SnsSigner

from leadscore.config import Settings
from leadscore.container import Container, install

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
TOKENS = "current-token-123,previous-token-456"
SECRETS = {"stripe": "whsec_test_5f2b9c", "shopify": "shpss_test_0c1d",
           "woocommerce": "wc-secret", "generic": "generic-secret",
           "mailgun": "key-3ax6xnjp29jd6fds4gc373sgvjxteol0", "mailchimp": "mc-url-secret-81f2",
           "postmark": "postmark:hook-pass-77", "mandrill": "mD-webhook-key-4c7a",
           "mailjet": "mailjet:hook-pass-31"}
MANDRILL_URL = "https://hooks.example.com/email_webhook/mandrill?from=mandrill"
SES_TOPIC = "arn:aws:sns:eu-west-1:123456789012:leadscore-ses-events"
SENDGRID = SendGridSigner()
SNS = SnsSigner()


class EdgeContainer(Container):
    """The real container, with the one network fetch (SNS certificates) answered locally."""

    def fetch_sns_certificate(self, url: str) -> bytes:
        assert url == SNS.CERT_URL, url
        return SNS.certificate


@pytest.fixture
def app_container(durable_store: Any) -> Iterator[Container]:
    settings = Settings(  # each secret behind an older one still active: rotation works
        api_token=TOKENS, ingest_max_bytes=64 * 1024,
        stripe_secret=f"whsec_old,{SECRETS['stripe']}",
        shopify_secret=f"old,{SECRETS['shopify']}",
        woocommerce_secret=f"old,{SECRETS['woocommerce']}",
        purchase_secret=f"old,{SECRETS['generic']}",
        sendgrid_public_key=f"{SendGridSigner().public_key},{SENDGRID.public_key}",
        mailgun_signing_key=f"old,{SECRETS['mailgun']}",
        mailchimp_secret=f"old,{SECRETS['mailchimp']}",
        postmark_basic_auth=f"old:old,{SECRETS['postmark']}",
        ses_topic_arns=f"arn:aws:sns:us-east-1:123456789012:other,{SES_TOPIC}",
        brevo_token="brevo-old,brevo-token-9f3",
        mandrill_webhook_key=f"old-key,{SECRETS['mandrill']}", mandrill_webhook_url=MANDRILL_URL,
        mailjet_basic_auth=f"old:old,{SECRETS['mailjet']}")
    built = EdgeContainer(settings,
                      store=durable_store, clock=lambda: NOW)
    install(built)
    yield built
    install(None)


def client_for(target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, str(MAIN), "http").test_client()
