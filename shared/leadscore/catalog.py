"""Every deployable function: its name (the URL prefix too) and its signature type.

`functions/main.py` exports each name; `leadscore serve` mounts each at `/<name>`.
"""

FUNCTIONS: dict[str, str] = {
    "ingest": "http",
    "purchase_webhook": "http",
    "email_webhook": "http",
    "form_submission": "http",
    "inactivity_decay": "cloudevent",
    "leads_api": "http",
    "crm_webhook": "http",
    "track": "http",
    "dashboard": "http",
}
