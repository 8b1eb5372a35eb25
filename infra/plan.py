"""The deployment plan: every gcloud command, in order, each safe to run again.

A step either uses an idempotent form (deploy, add-iam-policy-binding, update, services
enable), or is guarded by a `describe` (create only when missing; update when present, where
there is an update form), or tolerates "already exists" (Firestore composite indexes have no
describe by fields). Secret values never appear: a secret's first version is added from the
runner's stdin, before any function that binds it is deployed.
"""

from __future__ import annotations

import json
import shlex  # noqa: F401  (re-exported: deploy and the tests join commands with it)
from dataclasses import dataclass, field, replace
from pathlib import Path

from infra import data_care
from infra.config import DeployConfig, Size
from infra.step import Step

INDEXES = Path(__file__).with_name("firestore.indexes.json")
APIS = ["cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com", "firestore.googleapis.com", "pubsub.googleapis.com",
        "cloudscheduler.googleapis.com", "secretmanager.googleapis.com",
        "eventarc.googleapis.com"]
TOPICS = {"schedule": "leadscore-decay-schedule", "shards": "leadscore-decay-shards",
          "stage_changes": "leadscore-stage-changes", "non_openers": "leadscore-non-openers",
          "dead_letter": "leadscore-dead-letter"}
# A topic without a subscription drops what it receives: this one keeps dead letters.
DEAD_LETTER_KEEP = "leadscore-dead-letter-keep"
SCHEDULER_JOB = "leadscore-decay-daily"
INVOKER = "leadscore-invoker"
DATABASE = "(default)"
# Environment variables that are not leadscore settings (the AWS SDK reads these itself).
PLAIN_ENV = {"aws_access_key_id", "aws_secret_access_key"}


@dataclass
class Function:
    name: str
    entry: str
    access: str  # "public" (webhooks), "private" (IAM) or a topic key (Pub/Sub trigger)
    size: str
    secrets: list[str] = field(default_factory=list)
    publishes: list[str] = field(default_factory=list)

    @property
    def account(self) -> str:
        return f"ls-{self.name.replace('_', '-')}"[:30]

    @property
    def event_driven(self) -> bool:
        return self.access in TOPICS


def functions(config: DeployConfig) -> list[Function]:
    handover = (["handover_secret"] if config.handover_webhooks else []) + (
        ["slack_webhook_url", "slack_action_secret"] if config.slack else []) + (
        ["hubspot_token"] if config.hubspot else [])
    email = {"sendgrid": "sendgrid_public_key", "mailgun": "mailgun_signing_key",
             "mailchimp": "mailchimp_secret", "postmark": "postmark_basic_auth",
             "brevo": "brevo_token", "mandrill": "mandrill_webhook_key",
             "mailjet": "mailjet_basic_auth", "sparkpost": "sparkpost_basic_auth",
             "resend": "resend_secret", "ses_eventbridge": "ses_eventbridge_secret"}
    purchase = {"stripe": "stripe_secret", "shopify": "shopify_secret",
                "woocommerce": "woocommerce_secret", "generic": "purchase_secret"}
    forms = (["typeform_secret"] if config.typeform else []) + (
        ["tally_secret"] if config.tally else []) + (
        ["captcha_secret"] if config.captcha else [])
    aws = ["aws_access_key_id", "aws_secret_access_key"] if config.ses_suppression else []
    crm = ["hubspot_client_secret"] if config.hubspot else []
    esp_keys = {"mailchimp": "mailchimp_api_key", "brevo": "brevo_api_key",
                "sendgrid": "sendgrid_api_key"}
    esp = [esp_keys[tool] for tool in config.esp_sync]
    writes = ["stage_changes"]
    decay_topics = ["shards", "non_openers", "stage_changes"]
    listed = [
        Function("ingest", "ingest", "public", "webhook", ["api_token", *handover], writes),
        Function("form_submission", "form_submission", "public", "webhook",
                 [*forms, *handover], writes),
        Function("email_webhook", "email_webhook", "public", "webhook",
                 [email[p] for p in config.email_providers if p in email] + handover, writes),
        Function("purchase_webhook", "purchase_webhook", "public", "webhook",
                 [purchase[p] for p in config.purchase_platforms] + handover, writes),
        Function("track", "track", "public", "webhook", ["track_server_keys", *handover],
                 writes),
        Function("leads_api", "leads_api", "private", "api", ["api_token"], []),
        Function("dashboard", "dashboard",
                 "public" if config.dashboard_access == "token" else "private", "api",
                 ["dashboard_tokens"], []),
        Function("crm_webhook", "crm_webhook", "public", "webhook",
                 [*crm, *handover], writes),
        Function("inactivity_decay", "inactivity_decay", "schedule", "decay",
                 [*handover, *aws, *esp], decay_topics),
        Function("inactivity_decay_shards", "inactivity_decay", "shards", "decay",
                 [*handover, *aws, *esp], decay_topics),
    ]
    # every function computes lead ids, a keyed hash: the key is a secret of its own
    return [replace(f, secrets=["id_key", *f.secrets]) for f in listed]


def secret_id(setting: str) -> str:
    return "leadscore-" + setting.replace("_", "-")


def secret_env(setting: str) -> str:
    """The environment variable a function reads the secret from."""
    return setting.upper() if setting in PLAIN_ENV else f"LEADSCORE_{setting.upper()}"


def all_secrets(config: DeployConfig) -> list[str]:
    return sorted({s for f in functions(config) for s in f.secrets})


def _sa(config: DeployConfig, account: str) -> str:
    return f"{account}@{config.project}.iam.gserviceaccount.com"


def _topic(config: DeployConfig, key: str) -> str:
    return f"projects/{config.project}/topics/{TOPICS[key]}"


def _env(config: DeployConfig) -> str:
    values = {"LEADSCORE_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": config.project,
              "LEADSCORE_DECAY_SHARD_TOPIC": _topic(config, "shards"),
              "LEADSCORE_NON_OPENER_TOPIC": _topic(config, "non_openers"),
              "LEADSCORE_HANDOVER_TOPIC": _topic(config, "stage_changes"), **config.env}
    return "^|^" + "|".join(f"{k}={v}" for k, v in values.items())  # '|' lets values hold ','


def _size_flags(size: Size) -> list[str]:
    return [f"--memory={size.memory}", f"--cpu={size.cpu}", f"--timeout={size.timeout_s}s",
            f"--max-instances={size.max_instances}", f"--concurrency={size.concurrency}"]


def _database_steps(config: DeployConfig, p: str) -> list[Step]:
    db = f"--database={DATABASE}"
    steps = [Step(f"Firestore database in {config.database_location} (PITR, delete protection)",
                  ["gcloud", "firestore", "databases", "create",
                   f"--location={config.database_location}", "--type=firestore-native",
                   "--enable-pitr", "--delete-protection", p],
                  guard=["gcloud", "firestore", "databases", "describe", db, p],
                  update=["gcloud", "firestore", "databases", "update", db, "--enable-pitr",
                          "--delete-protection", p]),
             Step(f"daily backups kept {config.backup_retention_days} days", [
                 "gcloud", "firestore", "backups", "schedules", "create", db,
                 "--recurrence=daily", f"--retention={config.backup_retention_days}d", p],
                 guard=["gcloud", "firestore", "backups", "schedules", "list", db,
                        "--format=value(name)", p], guard_needs_output=True)]
    for group, ttl_field in data_care.ttl_policies(data_care.base_collection(config)).items():
        steps.append(Step(f"expire {group} documents at {ttl_field}", [
            "gcloud", "firestore", "fields", "ttls", "update", ttl_field,
            f"--collection-group={group}", "--enable-ttl", db, "--async", p]))
    for index in json.loads(INDEXES.read_text())["indexes"]:
        configs = [f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
                   for f in index["fields"]]
        fields = ", ".join(f["fieldPath"] for f in index["fields"] if f["fieldPath"] != "__name__")
        steps.append(Step(f"index on {index['collectionGroup']} ({fields})", [
            "gcloud", "firestore", "indexes", "composite", "create",
            f"--collection-group={index['collectionGroup']}", *configs, db, "--async", p],
            tolerate_exists=True))
    return steps


def _secret_steps(config: DeployConfig, p: str) -> list[Step]:
    steps = []
    for setting in all_secrets(config):
        sid = secret_id(setting)
        steps.append(Step(f"secret {sid}", [
            "gcloud", "secrets", "create", sid, "--replication-policy=automatic", p],
            guard=["gcloud", "secrets", "describe", sid, p]))
        steps.append(Step(f"first value of {sid} (from {secret_env(setting)})", [
            "gcloud", "secrets", "versions", "add", sid, "--data-file=-", p],
            guard=["gcloud", "secrets", "versions", "describe", "latest", f"--secret={sid}",
                   p], stdin_secret=secret_env(setting)))
    return steps


def _iam_steps(config: DeployConfig, fns: list[Function], p: str) -> list[Step]:
    steps = []
    for account in [*(f.account for f in fns), INVOKER]:
        steps.append(Step(f"service account {account}", [
            "gcloud", "iam", "service-accounts", "create", account,
            f"--display-name=leadscore {account}", p],
            guard=["gcloud", "iam", "service-accounts", "describe", _sa(config, account), p]))
    # Firestore IAM conditions can name one database: the role reaches nothing else.
    only_db = (f'expression=resource.name=="projects/{config.project}/databases/{DATABASE}"'
               f",title=leadscore-database-only")
    for fn in fns:
        member = f"--member=serviceAccount:{_sa(config, fn.account)}"
        steps.append(Step(f"{fn.name} may use the Firestore database", [
            "gcloud", "projects", "add-iam-policy-binding", config.project, member,
            "--role=roles/datastore.user", f"--condition={only_db}"]))
        for key in fn.publishes:
            steps.append(Step(f"{fn.name} may publish to {TOPICS[key]}", [
                "gcloud", "pubsub", "topics", "add-iam-policy-binding", TOPICS[key], member,
                "--role=roles/pubsub.publisher", p]))
        for setting in fn.secrets:
            steps.append(Step(f"{fn.name} may read {secret_id(setting)}", [
                "gcloud", "secrets", "add-iam-policy-binding", secret_id(setting), member,
                "--role=roles/secretmanager.secretAccessor", p]))
    return steps


def _deploy_step(config: DeployConfig, fn: Function, source: Path, p: str) -> Step:
    size = getattr(config.sizes, fn.size)
    trigger = {"public": ["--trigger-http", "--allow-unauthenticated"],
               "private": ["--trigger-http", "--no-allow-unauthenticated"]}.get(
        fn.access, [f"--trigger-topic={TOPICS.get(fn.access, fn.access)}",
                    f"--trigger-service-account={_sa(config, INVOKER)}", "--retry"])
    secrets = ",".join(f"{secret_env(s)}={secret_id(s)}:latest" for s in fn.secrets)
    build = ([f"--build-service-account=projects/{config.project}/serviceAccounts/"
              f"{config.build_service_account}"] if config.build_service_account else [])
    return Step(f"deploy {fn.name}", [
        "gcloud", "functions", "deploy", fn.name, "--gen2", f"--region={config.region}",
        f"--runtime={config.runtime}", f"--source={source}", f"--entry-point={fn.entry}",
        f"--service-account={_sa(config, fn.account)}", *build, *_size_flags(size), *trigger,
        f"--set-env-vars={_env(config)}", *([f"--set-secrets={secrets}"] if secrets else []),
        p, "--quiet"])


def _pubsub_agent(config: DeployConfig) -> dict[str, list[str]]:
    return {"project_number": ["gcloud", "projects", "describe", config.project,
                               "--format=value(projectNumber)"]}


AGENT = "--member=serviceAccount:service-@{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"


def _dead_letter_steps(config: DeployConfig, fn: Function, p: str) -> list[Step]:
    """Eventarc makes the trigger's subscription; its dead-letter policy is set on it after
    each deploy (Eventarc's documented way), and Pub/Sub's service agent must be allowed to
    take messages off it and to publish them to the dead-letter topic."""
    find = {**_pubsub_agent(config),
            "trigger": ["gcloud", "functions", "describe", fn.name, "--gen2",
                        f"--region={config.region}", "--format=value(eventTrigger.trigger)", p],
            "subscription": ["gcloud", "eventarc", "triggers", "describe", "@{trigger}",
                             "--format=value(transport.pubsub.subscription)"]}
    return [Step(f"{fn.name}: at most {config.max_delivery_attempts} deliveries, then the "
                 "dead-letter topic", [
                     "gcloud", "pubsub", "subscriptions", "update", "@{subscription}",
                     f"--dead-letter-topic={_topic(config, 'dead_letter')}",
                     f"--max-delivery-attempts={config.max_delivery_attempts}",
                     "--min-retry-delay=10s", "--max-retry-delay=600s"], captures=find),
            Step(f"Pub/Sub may forward {fn.name}'s dead letters", [
                "gcloud", "pubsub", "subscriptions", "add-iam-policy-binding",
                "@{subscription}", AGENT, "--role=roles/pubsub.subscriber"],
                captures=find)]


def build_plan(config: DeployConfig, source: Path) -> list[Step]:
    p = f"--project={config.project}"
    region = f"--region={config.region}"
    steps = [Step("enable the APIs", ["gcloud", "services", "enable", *APIS, p])]
    steps += _database_steps(config, p)
    for name in TOPICS.values():
        steps.append(Step(f"topic {name}", ["gcloud", "pubsub", "topics", "create", name, p],
                          guard=["gcloud", "pubsub", "topics", "describe", name, p]))
    steps.append(Step(f"subscription {DEAD_LETTER_KEEP} keeps dead letters 7 days", [
        "gcloud", "pubsub", "subscriptions", "create", DEAD_LETTER_KEEP,
        f"--topic={TOPICS['dead_letter']}", "--message-retention-duration=7d",
        "--expiration-period=never", p],
        guard=["gcloud", "pubsub", "subscriptions", "describe", DEAD_LETTER_KEEP, p]))
    steps.append(Step(f"Pub/Sub may publish to {TOPICS['dead_letter']}", [
        "gcloud", "pubsub", "topics", "add-iam-policy-binding", TOPICS["dead_letter"], AGENT,
        "--role=roles/pubsub.publisher", p], captures=_pubsub_agent(config)))
    fns = functions(config)
    steps += _secret_steps(config, p)
    steps += _iam_steps(config, fns, p)
    for fn in fns:
        steps.append(_deploy_step(config, fn, source, p))
        if fn.event_driven:
            steps += _dead_letter_steps(config, fn, p)
            steps.append(Step(f"Pub/Sub may invoke {fn.name}", [
                "gcloud", "functions", "add-invoker-policy-binding", fn.name, region,
                f"--member=serviceAccount:{_sa(config, INVOKER)}", p]))
        if fn.access == "private":
            for member in config.invoker_members:
                steps.append(Step(f"{member} may call {fn.name}", [
                    "gcloud", "functions", "add-invoker-policy-binding", fn.name, region,
                    f"--member={member}", p]))
    schedule = [f"--location={config.region}", f"--schedule={config.schedule}",
                f"--time-zone={config.time_zone}", f"--topic={_topic(config, 'schedule')}",
                "--message-body={}", p]
    steps.append(Step("the daily decay tick", [
        "gcloud", "scheduler", "jobs", "create", "pubsub", SCHEDULER_JOB, *schedule],
        guard=["gcloud", "scheduler", "jobs", "describe", SCHEDULER_JOB,
               f"--location={config.region}", p],
        update=["gcloud", "scheduler", "jobs", "update", "pubsub", SCHEDULER_JOB, *schedule]))
    return steps


def destroy_plan(config: DeployConfig, delete_data: bool) -> list[Step]:
    p = f"--project={config.project}"
    fns = functions(config)
    steps = [Step("the daily decay tick", ["gcloud", "scheduler", "jobs", "delete",
                                           SCHEDULER_JOB, f"--location={config.region}", p,
                                           "--quiet"])]
    steps += [Step(f"function {f.name}", ["gcloud", "functions", "delete", f.name, "--gen2",
                                          f"--region={config.region}", p, "--quiet"])
              for f in fns]
    steps.append(Step(f"subscription {DEAD_LETTER_KEEP} and its dead letters", [
        "gcloud", "pubsub", "subscriptions", "delete", DEAD_LETTER_KEEP, p, "--quiet"]))
    steps += [Step(f"topic {t}", ["gcloud", "pubsub", "topics", "delete", t, p])
              for t in TOPICS.values()]
    steps += [Step(f"secret {secret_id(s)}", ["gcloud", "secrets", "delete", secret_id(s), p,
                                              "--quiet"])
              for s in all_secrets(config)]
    steps += [Step(f"service account {a}", ["gcloud", "iam", "service-accounts", "delete",
                                            _sa(config, a), p, "--quiet"])
              for a in [*(f.account for f in fns), INVOKER]]
    if delete_data:
        db = f"--database={DATABASE}"
        steps.append(Step("lift the database's delete protection", [
            "gcloud", "firestore", "databases", "update", db, "--no-delete-protection", p]))
        steps.append(Step("the Firestore database and ALL lead data", [
            "gcloud", "firestore", "databases", "delete", db, p, "--quiet"]))
    for step in steps:  # a re-run after a partial deploy or destroy goes on past gaps
        step.tolerate_missing = True
    return steps
