"""Structured JSON logs that Cloud Logging understands, with addresses never in clear.

Each line is one JSON object with `severity`, `message` and our fields; Cloud Logging reads
`severity` and `message` and keeps the rest as `jsonPayload`. Any email address that slips
into a message or field is replaced by its lead id before the line is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import unicodedata
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from leadscore.domain.identity import redact_email

# An address as text or inside a URL: letters of any script (`\w`: "josé@exämple.com", and
# `_WIDE`: a script's combining marks, which `\w` does not take: "हिंदी@example.com"), the
# rest of an address's local part ("o'brien", "ana+news"), the "@" percent-encoded as a
# browser's encodeURIComponent sends it in a path ("/leads_api/leads/ana%40example.com", which
# the access log prints as it came; "%2540" once more encoded), percent-encoded letters
# ("b%C3%BCcher.de") and dots ("ana%2Eb%40example%2Ecom"), and the ideographic full stop that
# IDNA reads as a dot ("example。com": the app stores that address as "example.com"). Text
# that is not ASCII is folded with NFKC first (`_scrubbed`), as `find_lead` folds it: a
# fullwidth "\uff20" or "\uff0e" becomes "@" or ".", and a decomposed accent ("jose\u0301") is
# composed. `/ ? & =` end an address: they are a URL's delimiters, and a path or query
# around an address stays readable.
#
# Linear whatever the text (a stranger's 4 MiB body can reach a log line through an error
# message): a match may only start where a run of address characters starts (the
# lookbehind), and every repetition is possessive, so no run is read twice. The plain
# `[\w.%+\-]+@...` this replaces read each run again from every position in it: quadratic,
# 15 s of CPU for a 64 KB run of letters before an "@b".
_WIDE = r"[^\x00-\xbf\s\u2000-\u206f\u3000-\u303f\ufe10-\ufe6f]"  # not ASCII, not punctuation
_LOCAL_CHAR = rf"(?:[\w.+\-'!#$*^`{{|}}~]|%(?!(?:25)*40)[0-9A-Fa-f]{{2}}|{_WIDE})"
_LABEL = rf"(?:[\w\-]|%(?!2[Ee])[0-9A-Fa-f]{{2}}|{_WIDE})++"
_DOT = r"(?:\.|%2[Ee]|\u3002)"
EMAIL = re.compile(rf"(?<![\w.+\-'!#$*^`{{|}}~%]|{_WIDE}){_LOCAL_CHAR}++(?:@|%(?:25)*40)"
                   rf"{_LABEL}(?:{_DOT}{_LABEL})++")
_ADDRESS_RUN = re.compile(
    rf"(?:[\w.+\-'!#$*^`{{|}}~%@\u2024\u3002\ufe52\ufe6b\uff0e\uff20\uff61]|{_WIDE})*")
LONGEST = 16384  # characters of one logged string: a log line stays well under Cloud
# Logging's 256 KB entry, however much of a request an error message repeats
LOGGER_NAME = "leadscore"


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrubbed(value)
    if isinstance(value, dict):  # keys too: a count by label is keyed by the label
        return {(_scrubbed(k) if isinstance(k, str) else k): scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _cut(text: str) -> str:
    if len(text) > LONGEST:
        kept = text[:LONGEST]
        # and drop a run of address characters the cut ends in: it may be half an address
        run = _ADDRESS_RUN.match(kept[::-1])
        kept = kept[:len(kept) - (run.end() if run else 0)]
        text = f"{kept}... ({len(text) - len(kept)} more characters)"
    return text


def _scrubbed(text: str) -> str:
    text = _cut(text)  # first, so folding and scrubbing read at most LONGEST characters
    if not text.isascii():  # as `find_lead` folds an address (see EMAIL); NFKC can make a
        text = _cut(unicodedata.normalize("NFKC", text))  # string 18x longer: cut again
    if "@" in text or "%" in text:  # no "@" and no "%40": no address, most strings skip
        text = EMAIL.sub(_redacted, text)
    return text


def _redacted(match: re.Match[str]) -> str:
    token = match.group()
    # decoded first, so an encoded address gets the same lead id as the address itself
    decoded = unquote(unquote(token)).replace("\u3002", ".")
    domain = decoded.rpartition("@")[2]
    if domain.rpartition(".")[2].isdigit():  # "pkg@1.2.3": no top-level domain is a number
        return token  # ("a@b.c" is an address: the app accepts a one-letter one)
    quotes = len(decoded) - len(decoded.lstrip("'."))  # 'ana@example.com' as repr shows it
    return decoded[:quotes] + redact_email(decoded[quotes:])


class ScrubFilter(logging.Filter):
    """For other libraries' loggers (the local server's access log prints request paths,
    and `/leads_api/leads/ana@example.com` is a path): addresses become lead ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        return True


# --- the request a line belongs to (Cloud Logging's special fields) --------------------------
# Cloud Logging groups the lines of one request under it when each carries the request's
# trace ("projects/P/traces/T") and span; the functions-framework's execution id is a label.
# Headers are a caller's text: only their documented shapes are read (hex, bounded), and
# anything else is left out rather than repeated into every line.
TRACE = "logging.googleapis.com/trace"
SPAN = "logging.googleapis.com/spanId"
SAMPLED = "logging.googleapis.com/trace_sampled"
LABELS = "logging.googleapis.com/labels"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")  # W3C, version 00
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([0-9]))?")
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_PROJECT = re.compile(r"(?:[a-z0-9.\-]{1,63}:)?[a-z][a-z0-9\-]{4,28}[a-z0-9]")
_NO_ID = ("0" * 32, "0" * 16)
_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("leadscore_log_request", default=None)


def project_id() -> str | None:
    """The Google Cloud project traces are named in: GOOGLE_CLOUD_PROJECT (our deployment
    sets it; so does the Functions runtime as GCP_PROJECT on older generations), or None."""
    for name in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT"):
        value = os.environ.get(name, "")
        if _PROJECT.fullmatch(value):
            return value
    return None


def trace_of(headers: Any) -> tuple[str, str | None, bool] | None:
    """(trace id, span id as 16 hex digits or None, sampled) from W3C `traceparent` or
    Google's `X-Cloud-Trace-Context: TRACE/SPAN;o=1` (span in decimal), or None."""
    parent = _TRACEPARENT.fullmatch(headers.get("traceparent") or "")
    if parent and parent[1] != _NO_ID[0] and parent[2] != _NO_ID[1]:
        return parent[1], parent[2], int(parent[3], 16) & 1 == 1
    cloud = _CLOUD_TRACE.fullmatch(headers.get("x-cloud-trace-context") or "")
    if cloud is None or cloud[1] == _NO_ID[0]:
        return None
    span = int(cloud[2]) if cloud[2] else 0
    return (cloud[1].lower(), f"{span:016x}" if 0 < span < 2 ** 64 else None,
            cloud[3] == "1")


def request_fields(headers: Any) -> dict[str, Any]:
    """The special fields every line of this request carries (empty when none apply)."""
    fields: dict[str, Any] = {}
    trace, project = trace_of(headers), project_id()
    if trace is not None and project is not None:
        fields[TRACE] = f"projects/{project}/traces/{trace[0]}"
        if trace[1] is not None:
            fields[SPAN] = trace[1]
        fields[SAMPLED] = trace[2]
    execution = headers.get("function-execution-id") or ""
    if _EXECUTION_ID.fullmatch(execution):
        fields[LABELS] = {"execution_id": execution}
    return fields


def bind_request(headers: Any) -> Token[dict[str, Any] | None]:
    """Every line logged until `unbind_request` carries this request's trace fields."""
    return _REQUEST.set(request_fields(headers) or None)


def unbind_request(token: Token[dict[str, Any] | None]) -> None:
    _REQUEST.reset(token)


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
        bound = _REQUEST.get()
        if bound:  # after the fields: a field never stands in for the request's trace
            line.update(bound)
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


class _NotOurs(logging.Filter):
    """On a plain handler of the root logger: our lines are already written, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != LOGGER_NAME


_NOT_OURS = _NotOurs()


def configure(level: str = "INFO") -> None:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = True  # so test log capture sees our lines too
    after_framework_logging()


def after_framework_logging() -> None:
    """Our lines once, whatever the functions-framework did to logging. With
    LOG_EXECUTION_ID (Firebase sets it) the framework's `create_app` gives the root logger a
    plain stream handler of its own, which wrote each of our propagated lines a second time
    (its message only, untouched by our formatter); and its `dictConfig` disables every
    logger that exists by then, ours too in a process that builds several apps (`leadscore
    serve`). Plain `StreamHandler`s on the root logger skip our records (test captures and
    other handlers still get them), and our logger is enabled again. The framework's
    execution id still reaches our lines: `request_fields` labels them with it."""
    logging.getLogger(LOGGER_NAME).disabled = False
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and _NOT_OURS not in handler.filters:
            handler.addFilter(_NOT_OURS)


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
