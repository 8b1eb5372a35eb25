"""Cloud Functions loads this file: it re-exports every entry point by its deployed name."""

from crm_webhook import crm_webhook
from dashboard import dashboard
from email_webhook import email_webhook
from form_submission import form_submission
from inactivity_decay import inactivity_decay
from ingest import ingest
from leads_api import leads_api
from purchase_webhook import purchase_webhook
from track import track

from leadscore.wsgi_guard import install as guard_bodies

__all__ = ["crm_webhook", "dashboard", "email_webhook", "form_submission", "inactivity_decay",
           "ingest", "leads_api", "purchase_webhook", "track"]

guard_bodies()  # oversized bodies refused before the framework reads them
