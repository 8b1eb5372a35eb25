"""Structured JSON logs that Cloud Logging understands, with addresses never in clear.

Each line is one JSON object with `severity`, `message` and our fields; Cloud Logging reads
`severity` and `message` and keeps the rest as `jsonPayload`. Any email address that slips
into a message or field is replaced by its lead id before the line is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from leadscore.domain.identity import redact_email

# An address as text or inside a URL: letters of any script (`\w`: "josé@exämple.com"), the
# rest of an address's local part ("o'brien", "ana+news"), the "@" percent-encoded as a
# browser's encodeURIComponent sends it in a path ("/leads_api/leads/ana%40example.com", which
# the access log prints as it came; "%2540" once more encoded) and percent-encoded letters
# ("b%C3%BCcher.de"). `/ ? & =` end an address: they are a URL's delimiters, and a path or
# query around an address stays readable.
#
# Linear whatever the text (a stranger's 4 MiB body can reach a log line through an error
# message): a match may only start where a run of address characters starts (the
# lookbehind), and every repetition is possessive, so no run is read twice. The plain
# `[\w.%+\-]+@...` this replaces read each run again from every position in it: quadratic,
# 15 s of CPU for a 64 KB run of letters before an "@b".
_LOCAL_CHAR = r"(?:[\w.+\-'!#$*^`{|}~]|%(?!(?:25)*40)[0-9A-Fa-f]{2})"
_LABEL = r"(?:[\w\-]|%[0-9A-Fa-f]{2})++"
EMAIL = re.compile(rf"(?<![\w.+\-'!#$*^`{{|}}~%]){_LOCAL_CHAR}++(?:@|%(?:25)*40)"
                   rf"{_LABEL}(?:\.{_LABEL})++")
# Characters that NFKC turns into "@" or "." (fullwidth U+FF20 and U+FF0E, small U+FE6B and
# U+FE52, one dot leader U+2024): `find_lead` folds an address with NFKC, so an address
# written with a fullwidth at sign finds the lead, and must not be logged either
_COMPATIBLE = re.compile("[\u2024\ufe52\ufe6b\uff0e\uff20]")
_ADDRESS_RUN = re.compile(r"[\w.+\-'!#$*^`{|}~%@\u2024\ufe52\ufe6b\uff0e\uff20]*")
LONGEST = 16384  # characters of one logged string: a log line stays well under Cloud
# Logging's 256 KB entry, however much of a request an error message repeats
LOGGER_NAME = "leadscore"


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrubbed(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _scrubbed(text: str) -> str:
    if len(text) > LONGEST:  # cut first, so scrubbing reads at most LONGEST characters
        kept = text[:LONGEST]
        # and drop a run of address characters the cut ends in: it may be half an address
        run = _ADDRESS_RUN.match(kept[::-1])
        kept = kept[:len(kept) - (run.end() if run else 0)]
        text = f"{kept}... ({len(text) - len(kept)} more characters)"
    if not text.isascii() and _COMPATIBLE.search(text):
        text = unicodedata.normalize("NFKC", text)
    if "@" in text or "%" in text:  # no "@" and no "%40": no address, most strings skip
        text = EMAIL.sub(_redacted, text)
    return text


def _redacted(match: re.Match[str]) -> str:
    token = match.group()
    # decoded first, so an encoded address gets the same lead id as the address itself
    decoded = unquote(unquote(token))
    domain = decoded.rpartition("@")[2]
    if len(domain.rpartition(".")[2]) < 2:  # "a@b.c", "x@localhost.": no address
        return token
    quotes = len(decoded) - len(decoded.lstrip("'."))  # 'ana@example.com' as repr shows it
    return decoded[:quotes] + redact_email(decoded[quotes:])


class ScrubFilter(logging.Filter):
    """For other libraries' loggers (the local server's access log prints request paths,
    and `/leads_api/leads/ana@example.com` is a path): addresses become lead ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
        return _ENCODE(scrub(line))


# `json.dumps(..., default=str)` builds an encoder per call; one is enough (same output)
_ENCODE = json.JSONEncoder(default=str).encode


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is now (a test's capture, a server's redirect), or
    sys.stderr while `to_stderr` says so (the `leadscore` command's)."""

    @property
    def stream(self) -> Any:
        return sys.stderr if _to_stderr else sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


_to_stderr = False


def to_stderr(on: bool) -> bool:
    """Write our lines to stderr (`on`) or stdout, the default; returns the previous choice.
    The deployed functions keep stdout, which Cloud Logging reads; the `leadscore` command
    turns this on, since its stdout is its output (`--json` piped to a parser)."""
    global _to_stderr
    previous, _to_stderr = _to_stderr, on
    return previous


def configure(level: str = "INFO") -> None:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = True  # so test log capture sees our lines too


_LOGGER = logging.getLogger(LOGGER_NAME)  # the one object getLogger returns for the name


def log(level: int, message: str, **fields: Any) -> None:
    """One line, when `level` is enabled. The record is made directly: `Logger.log` would
    walk the stack for the caller's file and line (`findCaller`), which no line of ours
    prints, on every request (issue 20: about half the cost of a line)."""
    if _LOGGER.isEnabledFor(level):
        _LOGGER.handle(_LOGGER.makeRecord(LOGGER_NAME, level, "(leadscore)", 0, message, (),
                                          None, extra={"fields": fields}))


def info(message: str, **fields: Any) -> None:
    log(logging.INFO, message, **fields)


def warning(message: str, **fields: Any) -> None:
    log(logging.WARNING, message, **fields)


def error(message: str, **fields: Any) -> None:
    log(logging.ERROR, message, **fields)


def exception(message: str, **fields: Any) -> None:
    """An error line with the current exception's trace (for logs, never for callers)."""
    logging.getLogger(LOGGER_NAME).exception(message, extra={"fields": fields})
