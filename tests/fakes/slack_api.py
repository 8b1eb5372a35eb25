"""A fake Slack incoming webhook, from Slack's Block Kit reference and webhook docs.

Enforced (what the tests rely on): a JSON body with `text` or `blocks`; at most 50 blocks
of known types; section text at most 3,000 characters, at most 10 fields of at most 2,000;
header text plain_text of at most 150; context at most 10 elements; actions at most 25
elements; buttons with a plain_text label of at most 75, a URL of at most 3,000, style
primary/danger; text objects of type plain_text or mrkdwn. Answers 200 "ok", 400
"invalid_payload" (not JSON) or "invalid_blocks" (a broken block), 400 "no_text", and any
forced answer (429 with Retry-After, 500, 404 "no_service"...) queued with `fail_next`.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from fakes.server import FakeApi

BLOCK_TYPES = {"actions", "context", "divider", "file", "header", "image", "input",
               "rich_text", "section", "video", "markdown"}


class BlockError(Exception):
    pass


def _text(obj: Any, limit: int, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        raise BlockError("text object expected")
    if plain_only and obj["type"] != "plain_text":
        raise BlockError("plain_text required")
    text = obj.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        raise BlockError(f"text must be 1..{limit} characters, got {len(text or '')}")


def _button(element: dict[str, Any]) -> None:
    _text(element.get("text"), 75, plain_only=True)
    if "url" in element and len(element["url"]) > 3000:
        raise BlockError("button url over 3000")
    if element.get("style") not in (None, "primary", "danger"):
        raise BlockError("bad style")
    if len(element.get("action_id", "")) > 255:
        raise BlockError("action_id over 255")


def check_block(block: Any) -> None:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        raise BlockError(f"unknown block {block!r:.40}")
    kind = block["type"]
    if kind == "header":
        _text(block.get("text"), 150, plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            raise BlockError("section needs text or fields")
        if "text" in block:
            _text(block["text"], 3000)
        fields = block.get("fields", [])
        if len(fields) > 10:
            raise BlockError("more than 10 fields")
        for field in fields:
            _text(field, 2000)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            raise BlockError("context needs 1..10 elements")
        for element in elements:
            _text(element, 3000)
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            raise BlockError("actions needs 1..25 elements")
        for element in elements:
            if element.get("type") != "button":
                raise BlockError("only buttons are checked here")
            _button(element)


class SlackWebhookFake(FakeApi):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []  # every parsed body
        self.delivered: list[dict[str, Any]] = []  # bodies answered 200 "ok"

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.startswith("/services/"):
            return self.answer(404, "no_service")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return self.answer(400, "invalid_payload")
        self.received.append(body)
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return self.answer(400, "no_text")
        blocks = body.get("blocks") or []
        try:
            if not isinstance(blocks, list) or len(blocks) > 50:
                raise BlockError("at most 50 blocks")
            for block in blocks:
                check_block(block)
        except BlockError:
            return self.answer(400, "invalid_blocks")
        self.delivered.append(body)
        return self.answer(200, "ok")
