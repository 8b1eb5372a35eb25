"""The deployment plan: every gcloud command, in order, each safe to run again.

A step either uses an idempotent form (deploy, add-iam-policy-binding, services enable), or
is guarded by a `describe` (create only when missing; update when present, where there is an
update form), or tolerates "already exists" (Firestore composite indexes have no describe by
fields). Secret values never appear: the plan creates empty secrets and tells the operator
how to add a version.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from infra.config import DeployConfig, Size

INDEXES = Path(__file__).with_name("firestore.indexes.json")
APIS = ["cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com", "firestore.googleapis.com", "pubsub.googleapis.com",
        "cloudscheduler.googleapis.com", "secretmanager.googleapis.com",
        "eventarc.googleapis.com"]
TOPICS = {"schedule": "leadscore-decay-schedule", "shards": "leadscore-decay-shards",
          "stage_changes": "leadscore-stage-changes", "non_openers": "leadscore-non-openers"}
SCHEDULER_JOB = "leadscore-decay-daily"
INVOKER = "leadscore-invoker"


@dataclass
class Step:
    what: str
    command: list[str]
    guard: list[str] | None = None  # if it succeeds the resource exists: skip (or update)
    update: list[str] | None = None  # run instead of `command` when the guard succeeds
    tolerate_exists: bool = False

    def shell(self) -> str:
        cmd = shlex.join(self.command)
        if self.guard and self.update:
            return (f"if {shlex.join(self.guard)} >/dev/null 2>&1; then "
                    f"{shlex.join(self.update)}; else {cmd}; fi")
        if self.guard:
            return f"{shlex.join(self.guard)} >/dev/null 2>&1 || {cmd}"
        if self.tolerate_exists:
            return f"{cmd}  # an ALREADY_EXISTS answer is fine"
        return cmd

    def commands(self) -> list[list[str]]:
        return [c for c in (self.guard, self.command, self.update) if c]


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


def functions(config: DeployConfig) -> list[Function]:
    handover = ["handover_secret"] if config.handover_webhooks else []
    email = {"sendgrid": "sendgrid_public_key", "mailgun": "mailgun_signing_key",
             "mailchimp": "mailchimp_secret", "postmark": "postmark_basic_auth",
             "brevo": "brevo_token"}
    purchase = {"stripe": "stripe_secret", "shopify": "shopify_secret",
                "woocommerce": "woocommerce_secret", "generic": "purchase_secret"}
    forms = (["typeform_secret"] if config.typeform else []) + (
        ["tally_secret"] if config.tally else []) + (
        ["captcha_secret"] if config.captcha else [])
    writes = ["stage_changes"]
    return [
        Function("ingest", "ingest", "public", "webhook", ["api_token", *handover], writes),
        Function("form_submission", "form_submission", "public", "webhook",
                 [*forms, *handover], writes),
        Function("email_webhook", "email_webhook", "public", "webhook",
                 [email[p] for p in config.email_providers if p in email] + handover, writes),
        Function("purchase_webhook", "purchase_webhook", "public", "webhook",
                 [purchase[p] for p in config.purchase_platforms] + handover, writes),
        Function("leads_api", "leads_api", "private", "api", ["api_token"], []),
        Function("inactivity_decay", "inactivity_decay", "schedule", "decay", handover,
                 ["shards", "non_openers", "stage_changes"]),
        Function("inactivity_decay_shards", "inactivity_decay", "shards", "decay", handover,
                 ["shards", "non_openers", "stage_changes"]),
    ]


def secret_id(setting: str) -> str:
    return "leadscore-" + setting.replace("_", "-")


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


def build_plan(config: DeployConfig, source: Path) -> list[Step]:
    p = f"--project={config.project}"
    region = f"--region={config.region}"
    steps = [Step("enable the APIs", ["gcloud", "services", "enable", *APIS, p])]
    steps.append(Step("create the Firestore database",
                      ["gcloud", "firestore", "databases", "create",
                       f"--location={config.firestore_location}", "--type=firestore-native", p],
                      guard=["gcloud", "firestore", "databases", "describe",
                             "--database=(default)", p]))
    for index in json.loads(INDEXES.read_text())["indexes"]:
        configs = [f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
                   for f in index["fields"]]
        steps.append(Step(f"index on {index['collectionGroup']}", [
            "gcloud", "firestore", "indexes", "composite", "create",
            f"--collection-group={index['collectionGroup']}", *configs,
            "--database=(default)", "--async", p], tolerate_exists=True))
    for name in TOPICS.values():
        steps.append(Step(f"topic {name}", ["gcloud", "pubsub", "topics", "create", name, p],
                          guard=["gcloud", "pubsub", "topics", "describe", name, p]))
    fns = functions(config)
    for setting in sorted({s for f in fns for s in f.secrets}):
        sid = secret_id(setting)
        steps.append(Step(f"secret {sid} (add its value yourself)", [
            "gcloud", "secrets", "create", sid, "--replication-policy=automatic", p],
            guard=["gcloud", "secrets", "describe", sid, p]))
    for account in [*(f.account for f in fns), INVOKER]:
        steps.append(Step(f"service account {account}", [
            "gcloud", "iam", "service-accounts", "create", account,
            f"--display-name=leadscore {account}", p],
            guard=["gcloud", "iam", "service-accounts", "describe", _sa(config, account), p]))
    for fn in fns:
        member = f"--member=serviceAccount:{_sa(config, fn.account)}"
        steps.append(Step(f"{fn.name} may use Firestore", [
            "gcloud", "projects", "add-iam-policy-binding", config.project, member,
            "--role=roles/datastore.user", "--condition=None"]))
        for key in fn.publishes:
            steps.append(Step(f"{fn.name} may publish to {TOPICS[key]}", [
                "gcloud", "pubsub", "topics", "add-iam-policy-binding", TOPICS[key], member,
                "--role=roles/pubsub.publisher", p]))
        for setting in fn.secrets:
            steps.append(Step(f"{fn.name} may read {secret_id(setting)}", [
                "gcloud", "secrets", "add-iam-policy-binding", secret_id(setting), member,
                "--role=roles/secretmanager.secretAccessor", p]))
    for fn in fns:
        size = getattr(config.sizes, fn.size)
        trigger = {"public": ["--trigger-http", "--allow-unauthenticated"],
                   "private": ["--trigger-http", "--no-allow-unauthenticated"]}.get(
            fn.access, [f"--trigger-topic={TOPICS.get(fn.access, fn.access)}",
                        f"--trigger-service-account={_sa(config, INVOKER)}"])
        secrets = ",".join(f"LEADSCORE_{s.upper()}={secret_id(s)}:latest" for s in fn.secrets)
        steps.append(Step(f"deploy {fn.name}", [
            "gcloud", "functions", "deploy", fn.name, "--gen2", region,
            f"--runtime={config.runtime}", f"--source={source}", f"--entry-point={fn.entry}",
            f"--service-account={_sa(config, fn.account)}", *_size_flags(size), *trigger,
            f"--set-env-vars={_env(config)}", *([f"--set-secrets={secrets}"] if secrets else []),
            p, "--quiet"]))
        if fn.access in TOPICS:
            steps.append(Step(f"Pub/Sub may invoke {fn.name}", [
                "gcloud", "functions", "add-invoker-policy-binding", fn.name, region,
                f"--member=serviceAccount:{_sa(config, INVOKER)}", p]))
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
    steps += [Step(f"topic {t}", ["gcloud", "pubsub", "topics", "delete", t, p])
              for t in TOPICS.values()]
    steps += [Step(f"secret {secret_id(s)}", ["gcloud", "secrets", "delete", secret_id(s), p,
                                              "--quiet"])
              for s in sorted({s for f in fns for s in f.secrets})]
    steps += [Step(f"service account {a}", ["gcloud", "iam", "service-accounts", "delete",
                                            _sa(config, a), p, "--quiet"])
              for a in [*(f.account for f in fns), INVOKER]]
    if delete_data:
        steps.append(Step("the Firestore database and ALL lead data", [
            "gcloud", "firestore", "databases", "delete", "--database=(default)", p,
            "--quiet"]))
    return steps
