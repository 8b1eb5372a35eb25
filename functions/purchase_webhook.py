"""`purchase_webhook`: Stripe, Shopify, WooCommerce and the generic format, one path each."""

from __future__ import annotations

from flask import Request, Response

from leadscore.container import container
from leadscore.errors import NotFound
from leadscore.http import endpoint, json_response, lower_headers, read_body, require_json
from leadscore.providers import generic_purchase, shopify, stripe, woocommerce
from leadscore.providers.signing import secrets
from leadscore.service.purchases import record_purchases


@endpoint("purchase_webhook", methods={"POST"})
def purchase_webhook(request: Request) -> Response:
    app = container()
    settings, now = app.settings, app.now()
    platform = request.path.strip("/")
    raw = read_body(request, settings.purchase_max_bytes)
    headers = lower_headers(request)
    if platform == "woocommerce" and woocommerce.is_ping(raw, headers):
        return json_response(200, {"status": "ok", "message": "webhook registered"})
    require_json(request)
    if platform == "stripe":
        stripe.verify(raw, headers, secrets(settings.stripe_secret.get_secret_value()), now)
        reports = stripe.parse(raw)
    elif platform == "shopify":
        shopify.verify(raw, headers, secrets(settings.shopify_secret.get_secret_value()), now)
        reports = shopify.parse(raw, headers)
    elif platform == "woocommerce":
        woocommerce.verify(raw, headers,
                           secrets(settings.woocommerce_secret.get_secret_value()), now)
        reports = woocommerce.parse(raw, headers)
    elif platform == "generic":
        generic_purchase.verify(raw, headers,
                                secrets(settings.purchase_secret.get_secret_value()), now)
        reports = generic_purchase.parse(raw)
    else:
        raise NotFound(f"unknown platform {platform!r}: use stripe, shopify, woocommerce or "
                       "generic")
    if not reports:
        return json_response(200, {"status": "ignored",
                                   "message": "event type not handled; nothing recorded"})
    result = record_purchases(app.store, app.rules, reports, now)
    if result.stage_changes:
        app.hand_over()
    return json_response(200, {"status": "ok", **result.model_dump(exclude={"stage_changes"})})
