"""Importing sales outcomes from a CSV file (`leadscore import outcomes FILE.csv`).

Columns: email, outcome, occurred_at (ISO 8601; a time without a zone is read as UTC), and
optionally amount (in major units, "1250.00"), currency, reason and id. Each row becomes an
`OutcomeRecorded` event written through the ingest use case, a page at a time, so a file of
any size is read in constant memory. The idempotency key is the `id` column, or a hash of the
row when there is none, so importing the same file twice counts each outcome once. A bad row
is reported by its line number and skipped; the good rows are still imported.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from leadscore.domain.events import OutcomeRecorded
from leadscore.domain.money import MoneyError, currency_code, to_minor
from leadscore.domain.rules import Rules
from leadscore.service.ingest import dated_ahead, ingest
from leadscore.store.port import LeadStore

PAGE = 500
SOURCE = "csv_import"
REQUIRED = ("email", "outcome", "occurred_at")
MAX_LISTED = 100  # bad rows listed in the report; the rest are only counted


class BadRow(BaseModel):
    line: int
    problem: str


class ImportReport(BaseModel):
    rows: int = 0
    applied: int = 0
    duplicates: int = 0
    erased: int = 0  # rows for an erased address: dropped, as every event for one is
    bad: int = 0
    bad_rows: list[BadRow] = Field(default_factory=list)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _undecodable(text: str) -> bool:
    """True for text read with errors="surrogateescape" that held bytes UTF-8 cannot read."""
    return any("\udc80" <= c <= "\udcff" for c in text)


def outcome_of(row: dict[str, str | None], now: datetime) -> OutcomeRecorded:
    """One row as an event; ValueError names what is wrong with it."""
    cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
    if any(_undecodable(v) for v in cells.values()):
        raise ValueError("not UTF-8 text (save the file as UTF-8)")
    missing = [c for c in REQUIRED if not cells.get(c)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        occurred_at = _instant(cells["occurred_at"])
    except ValueError:
        raise ValueError(f"occurred_at {cells['occurred_at']!r} is not an ISO 8601 time") from None
    if dated_ahead(occurred_at, now):
        raise ValueError("occurred_at is in the future")
    amount_minor = currency = None
    if cells.get("amount"):
        if not cells.get("currency"):
            raise ValueError("an amount needs a currency")
        try:
            currency = currency_code(cells["currency"])
            amount_minor = to_minor(cells["amount"], currency)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
    key = cells.get("id") or hashlib.sha256(
        "\x1f".join(f"{k}={cells[k]}" for k in sorted(cells)).encode()).hexdigest()
    try:
        return OutcomeRecorded(
            email=cells["email"], source=SOURCE, idempotency_key=key, occurred_at=occurred_at,
            outcome=cells["outcome"], amount_minor=amount_minor, currency=currency,
            reason=cells.get("reason") or None, deal_id=cells.get("id") or None)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                   for e in exc.errors())) from None


def import_outcomes(store: LeadStore, rules: Rules, lines: Iterable[str], now: datetime,
                    on_progress: Callable[[int], None] | None = None) -> ImportReport:
    """Read CSV `lines` (with a header row) and ingest every good row, a page at a time."""
    report = ImportReport()
    reader = csv.DictReader(lines)
    header = [f.strip().lower() for f in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        report.bad = 1
        report.bad_rows = [BadRow(line=1, problem=f"header lacks {', '.join(missing)}")]
        return report
    page: list[OutcomeRecorded] = []

    def flush() -> None:
        result = ingest(store, rules, page, now)
        report.applied += result.applied
        report.duplicates += result.duplicates
        report.erased += result.erased
        if on_progress:
            on_progress(len(page))
        page.clear()

    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a cell over the csv module's limit, a NUL byte...
            row, problem = None, f"not a CSV row: {exc}"
        report.rows += 1
        try:
            if row is None:
                raise ValueError(problem)
            page.append(outcome_of(row, now))
        except ValueError as exc:
            report.bad += 1
            if len(report.bad_rows) < MAX_LISTED:
                report.bad_rows.append(BadRow(line=reader.line_num, problem=str(exc)))
        if len(page) >= PAGE:
            flush()
    if page:
        flush()
    return report
