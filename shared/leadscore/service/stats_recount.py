"""`leadscore dashboard recount`: count the leads an older release stored, so the dashboard
can read its statistics documents instead of aggregation queries (issue 17).

Every write of this release stores the keys a lead counts under (`counted`, see
`domain/lead_stats.py`) and the store keeps their sums with it. A lead stored before has no
`counted`: this job gives it one, inside that lead's own transaction and only if it still
has none, so the store adds it to the sums exactly once, whatever writes run beside it (a
concurrent write counts the lead itself; the recount then finds it counted and leaves it).
Streaming a page at a time in lead id order, resumable (`after_id`), and safe to run again:
a second run counts nothing. When it has been through every lead it marks the statistics
complete (`mark_stats_complete`); from then on the dashboard reads them.

The keys come from the lead's *stored* view (what the aggregation queries counted), with
the histogram's buckets of the rules in force; `leadscore rescore` after a rules change
re-counts every lead as it rewrites it.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from leadscore.domain.lead_stats import counted_under
from leadscore.domain.rules import Rules
from leadscore.errors import ConfigError
from leadscore.service.outbound_sync import lead_pages
from leadscore.service.writes import request_unit
from leadscore.store.port import DashboardStats, LeadSnapshot, LeadStore, LeadWrite

PAGE = 500


class RecountReport(BaseModel):
    scanned: int = 0
    counted: int = 0  # leads that had no `counted` and got one
    complete: bool = False  # went through every lead: the statistics are marked complete
    last_lead_id: str | None = None  # pass as `after_id` to resume after an interruption


def recount(store: LeadStore, rules: Rules, *, after_id: str | None = None, page: int = PAGE,
            on_page: Callable[[RecountReport], None] | None = None) -> RecountReport:
    if not isinstance(store, DashboardStats):
        raise ConfigError(f"{type(store).__name__} keeps no dashboard statistics")
    report = RecountReport(last_lead_id=after_id)

    def plan(snap: LeadSnapshot) -> tuple[LeadWrite | None, bool]:
        lead = snap.lead
        if lead is None or lead.counted is not None:  # erased, or counted meanwhile
            return None, False
        counted = counted_under(lead, rules.stages.mql, rules.stages.sql)
        return LeadWrite(lead=lead.model_copy(update={"counted": counted}), fields="view"), True

    for leads in lead_pages(store, None, after_id, page):
        missing = [lead.lead_id for lead in leads if lead.counted is None]
        with request_unit(store, len(missing)):  # SQLite: a page in one transaction
            for lead_id in missing:
                report.counted += store.transact(lead_id, (), plan)
        report.scanned += len(leads)
        report.last_lead_id = leads[-1].lead_id
        if on_page is not None:
            on_page(report)
    store.mark_stats_complete()
    report.complete = True
    return report
