"""A lead that moves to a new address (Mailchimp's `upemail`) while a HubSpot sync run has
its upsert on the way is no erasure: the run must not GDPR-delete the person's contact
(HubSpot deletes it for good and blocklists the address)."""

from __future__ import annotations

import threading
import time
from typing import Any

from conftest import NOW
from fakes.hubspot_api import HubSpotFake

from integrations.test_crm_erasure import app  # noqa: F401 - the fixture: a synced warm lead
from integrations.test_crm_outbox import EMAIL
from leadscore.container import Container
from leadscore.domain.identity import lead_id_for
from leadscore.domain.rules import Rules
from leadscore.service.moves import move_lead

NEW_EMAIL = "ana.nueva@tiendassol.example"


def test_a_move_during_a_sync_run_sends_no_gdpr_delete(app: Container,  # noqa: F811
                                                        hubspot_api: HubSpotFake,
                                                        rules: Rules) -> None:
    lead_id = lead_id_for(EMAIL)
    # GIVEN a sync run that read the lead and whose upsert HubSpot holds
    hubspot_api.upserts_open.clear()
    lead: Any = app.store.get_lead(lead_id)
    app.store.put_lead(lead.model_copy(update={"stage": "sql", "score": lead.score + 30}))
    arrived = hubspot_api.upserts_arrived
    run = threading.Thread(target=app.sync_crm, kwargs={"lead_ids": [lead_id]}, daemon=True)
    run.start()
    deadline = time.monotonic() + 30
    while hubspot_api.upserts_arrived == arrived:
        assert time.monotonic() < deadline, "the run's upsert never reached HubSpot"
        threading.Event().wait(0.01)
    # WHEN the person's address moves meanwhile, and HubSpot then stores the upsert
    assert move_lead(app.store, rules, EMAIL, NEW_EMAIL, NOW) > 0
    hubspot_api.upserts_open.set()
    run.join(30)
    assert not run.is_alive()
    # THEN no GDPR delete went out, nor is one queued, and the contact is still there
    assert app.handovers_settled(30)
    app.erase_in_crm()
    assert hubspot_api.gdpr_deleted == []
    assert EMAIL in hubspot_api.contacts and EMAIL not in hubspot_api.blocklist
