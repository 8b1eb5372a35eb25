"""Block Kit JSON to a Slack-like HTML page, for the README picture of the card.

Covers the blocks the card uses (header, section text and fields, actions with link
buttons, context) and the mrkdwn it writes (*bold*, newlines, <!date^...|fallback>,
&amp;-escapes, which are already HTML-safe). Not a general Slack renderer.
"""

from __future__ import annotations

import html
import re
from typing import Any

CSS = """
body { font-family: Lato, 'Helvetica Neue', Arial, sans-serif; font-size: 15px; color: #1d1c1d;
       margin: 0; background: #fff; }
.msg { display: flex; padding: 16px 20px; width: 640px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #2f7d6d; color: #fff;
          font-weight: 900; display: flex; align-items: center; justify-content: center;
          margin-right: 10px; flex: none; }
.app { font-weight: 900; } .app small { font-weight: 400; color: #616061; font-size: 12px; }
.badge { background: #e8e8e8; color: #616061; font-size: 10px; padding: 1px 3px;
         border-radius: 2px; margin-left: 4px; }
h1 { font-size: 18px; font-weight: 900; margin: 6px 0 4px; }
.section { margin: 8px 0; line-height: 1.46; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; }
.actions a { display: inline-block; border: 1px solid #bbb; border-radius: 4px;
             padding: 4px 12px; margin-right: 8px; font-weight: 700; color: #1d1c1d;
             text-decoration: none; font-size: 14px; }
.actions a.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.actions a.danger { background: #e01e5a; color: #fff; border-color: #e01e5a; }
.context { color: #616061; font-size: 12px; margin-top: 8px; }
"""


def mrkdwn(text: str) -> str:
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", text)
    return text.replace("\n", "<br>")


def _text(obj: dict[str, Any]) -> str:
    return mrkdwn(obj["text"]) if obj["type"] == "mrkdwn" else html.escape(obj["text"])


def render(message: dict[str, Any], app_name: str = "leadscore") -> str:
    parts = []
    for block in message["blocks"]:
        kind = block["type"]
        if kind == "header":
            parts.append(f"<h1>{_text(block['text'])}</h1>")
        elif kind == "section" and "fields" in block:
            cells = "".join(f"<div>{_text(f)}</div>" for f in block["fields"])
            parts.append(f'<div class="section fields">{cells}</div>')
        elif kind == "section":
            parts.append(f'<div class="section">{_text(block["text"])}</div>')
        elif kind == "actions":
            links = "".join(f'<a class="{e.get("style", "")}">{_text(e["text"])}</a>'
                            for e in block["elements"])
            parts.append(f'<div class="section actions">{links}</div>')
        elif kind == "context":
            parts.append('<div class="context">' + " ".join(
                _text(e) for e in block["elements"]) + "</div>")
    return (f"<!doctype html><meta charset='utf-8'><style>{CSS}</style>"
            f"<div class='msg'><div class='avatar'>ls</div><div>"
            f"<div class='app'>{app_name}<span class='badge'>APP</span> <small>12:00</small>"
            f"</div>{''.join(parts)}</div></div>")
