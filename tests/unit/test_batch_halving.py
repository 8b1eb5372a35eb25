"""The batch sender both syncs share (`integrations/crm_sync.send_in_batches`): a batch
refused whole for good is halved until each bad record stands alone, and a tool refusing
every record alike costs a few calls, not one per record.

The tool is a stand-in callable (the outside edge) that refuses a whole batch with 422 when
it holds a bad record, as HubSpot's batch upsert and Brevo's batch update do."""

from __future__ import annotations

import pytest

from leadscore.integrations.crm_sync import send_in_batches
from leadscore.integrations.ports import BatchResult, PermanentDelivery

RECORDS = [f"r{n:03d}" for n in range(100)]


class Tool:
    def __init__(self, bad: set[str] | None = None, refuse_all: bool = False) -> None:
        self.bad, self.refuse_all, self.calls, self.stored = bad or set(), refuse_all, 0, set()

    def send(self, batch: list[str]) -> BatchResult:
        self.calls += 1
        if self.refuse_all or self.bad & set(batch):
            raise PermanentDelivery("422 invalid input", status=422)
        self.stored |= set(batch)
        return BatchResult()


@pytest.mark.parametrize("bad", [{"r000"}, {"r000", "r001"}, {"r000", "r099"},
                                 {"r000", "r050", "r099"}, {"r017", "r063"}])
def test_each_bad_record_is_found_and_every_other_one_goes(bad: set[str]) -> None:
    # GIVEN 100 records, some of which the tool refuses (a review found two bad records at
    # the front held back all 98 others on every run under a first version of the rule)
    tool = Tool(bad)
    # WHEN they are sent in one batch of 100, and what a run leaves is sent by the next
    # (two probes drawn from the bad ones end a run early: then the next draws again)
    rejected: set[str] = set()
    pending = RECORDS
    for _ in range(3):
        report = send_in_batches(tool.send, pending, str, 100)
        rejected |= set(report.rejected)
        pending = sorted(report.failed)
        if not pending:
            break
    # THEN every good record is stored and each bad one refused for good, alone
    assert tool.stored == set(RECORDS) - bad
    assert rejected == bad and pending == []


def test_a_tool_refusing_every_record_alike_costs_a_few_calls_and_refuses_nobody() -> None:
    # GIVEN a tool that refuses every record (a deleted list: 971 requests for 100 readers
    # when halving went down to each one)
    tool = Tool(refuse_all=True)
    # WHEN 100 records are sent
    report = send_in_batches(tool.send, RECORDS, str, 100)
    # THEN the halving stops after the first lone refusal and two probes: no
    # record is refused for good, all are sent again by the next run
    assert tool.calls <= 12, tool.calls
    assert report.rejected == {} and set(report.failed) == set(RECORDS)
