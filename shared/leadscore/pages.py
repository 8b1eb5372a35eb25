"""Small HTML pages for people who post a plain HTML form with no redirect configured.

A browser that submits a form navigates to our answer, so it should see a page, not raw
JSON. Scripts (fetch, curl) keep getting JSON: a request is treated as a browser's only
when its Accept header names text/html explicitly (browsers do; `*/*` does not count).
"""

from __future__ import annotations

from html import escape

from flask import Request, Response

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#1f2933}}h1{{font-size:1.5rem}}a{{color:#0b5cad}}</style></head>
<body><main><h1>{title}</h1><p>{message}</p>{back}</main></body></html>
"""


def wants_html(request: Request) -> bool:
    """True for a browser's own navigation (Accept lists text/html), unless it sent JSON."""
    if request.mimetype == "application/json":
        return False
    return any(value == "text/html" for value in request.accept_mimetypes.values())


def page(status: int, title: str, message: str, back: str | None = None) -> Response:
    link = f'<p><a href="{escape(back, quote=True)}">Go back</a></p>' if back else ""
    body = PAGE.format(title=escape(title), message=escape(message), back=link)
    return Response(body, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store"})


def thank_you() -> Response:
    return page(200, "Thank you", "We received your submission.")


def error_page(status: int, message: str) -> Response:
    title = "Please check the form" if status < 500 else "Something went wrong"
    hint = "" if status < 500 else " Please try again in a moment."
    return page(status, title, message + hint)
