"""Form-encoded bodies (`application/x-www-form-urlencoded`), the one parser the providers
that post forms (Mailchimp, Mandrill, Mailgun's legacy webhooks) start from."""

from __future__ import annotations

from urllib.parse import parse_qsl

from leadscore.errors import BadRequest

MAX_FIELDS = 1000  # Mailchimp's richest form has about 60; a bound on one request's work


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    """The fields in order, or a 400 that names the problem without repeating the body
    (an error message is logged, and a stranger's body is not ours to log)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not form-encoded: not UTF-8") from None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=True,
                         max_num_fields=MAX_FIELDS)
    except ValueError:
        fields = text.count("&") + 1
        problem = (f"more than {MAX_FIELDS} fields" if fields > MAX_FIELDS
                   else "a field without '='")
        raise BadRequest(f"body is not form-encoded: {problem}") from None
