"""The plan against the documented constraints of the services it uses.

Each test states one rule of Google Cloud (or of data protection) that a plan can break
while every command still parses, and walks the plan in order the way the services would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import config, data_care, locations, plan

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "shared" / "leadscore" / "store" / "firestore.py"


def everything(**change: object) -> config.DeployConfig:
    return config.DeployConfig.model_validate({
        "project": "leadscore-demo-42", "region": "europe-west1", "captcha": True,
        "tally": True, "handover_webhooks": True,
        "email_providers": list(config.EMAIL_PROVIDERS),
        "env": {"LEADSCORE_SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:ses",
                "LEADSCORE_SES_SUPPRESSION_REGION": "eu-west-1",
                "LEADSCORE_MANDRILL_WEBHOOK_URL": "https://example.test/email_webhook/mandrill"},
        **change})


def _flag(command: list[str], name: str) -> str | None:
    return next((w.split("=", 1)[1] for w in command if w.startswith(f"--{name}=")), None)


def test_no_function_binds_a_secret_before_a_version_of_it_exists(tmp_path: Path) -> None:
    # Cloud Run resolves `secret:latest` when it deploys a revision: no version, no deploy.
    versioned: set[str] = set()
    bound = 0
    for step in plan.build_plan(everything(), tmp_path):
        command = step.command
        if command[1:4] == ["secrets", "versions", "add"]:
            assert step.stdin_secret, "a version needs a value"
            versioned.add(command[4])
        if command[1:3] == ["functions", "deploy"]:
            spec = _flag(command, "set-secrets") or ""
            for binding in filter(None, spec.split(",")):
                secret = binding.split("=", 1)[1].split(":")[0]
                assert secret in versioned, f"{command[3]} binds {secret} before its version"
                bound += 1
    assert bound > 10


def test_every_event_driven_function_retries_into_a_dead_letter_topic(tmp_path: Path) -> None:
    # Cloud Run functions drop a failed event unless deployed with --retry; Pub/Sub then
    # redelivers forever unless the trigger's subscription has a dead-letter policy.
    steps = plan.build_plan(everything(), tmp_path)
    event_driven = [s.command for s in steps if s.command[1:3] == ["functions", "deploy"]
                    and _flag(s.command, "trigger-topic")]
    assert len(event_driven) == 2
    topics = {s.command[4] for s in steps if s.command[1:4] == ["pubsub", "topics", "create"]}
    for deploy in event_driven:
        name = deploy[3]
        assert "--retry" in deploy, name
        after = steps[[s.command for s in steps].index(deploy) + 1:]
        policy = [s for s in after if s.command[1:4] == ["pubsub", "subscriptions", "update"]
                  and name in s.captures.get("trigger", [])]
        assert len(policy) == 1, name
        dead_letter = _flag(policy[0].command, "dead-letter-topic") or ""
        assert dead_letter.rsplit("/", 1)[-1] in topics
        assert 5 <= int(_flag(policy[0].command, "max-delivery-attempts") or 0) <= 100
        # Pub/Sub's service agent must be allowed to move the message (else it stays)
        assert any(s.command[1:4] == ["pubsub", "subscriptions", "add-iam-policy-binding"]
                   and "--role=roles/pubsub.subscriber" in s.command
                   and name in s.captures.get("trigger", []) for s in after)
    assert any(s.command[1:4] == ["pubsub", "subscriptions", "create"]
               and _flag(s.command, "topic") == plan.TOPICS["dead_letter"] for s in steps), \
        "a topic without a subscription drops its dead letters"


@pytest.mark.parametrize(("region", "multi_region"), [
    ("europe-west1", False), ("us-central1", False), ("europe-west12", False),
    ("asia-northeast1", False), ("us-central1", True), ("europe-west4", True)])
def test_the_database_lives_in_the_region_or_its_multi_region(
        tmp_path: Path, region: str, multi_region: bool) -> None:
    chosen = everything(region=region, firestore_multi_region=multi_region)
    create = next(s.command for s in plan.build_plan(chosen, tmp_path)
                  if s.command[1:4] == ["firestore", "databases", "create"])
    location = _flag(create, "location") or ""
    documented = {"eur3": "europe-", "nam5": "us-", "nam7": "us-"}
    if multi_region:
        assert region.startswith(documented[location])
    else:
        assert location == region and location in locations.REGIONAL


def test_the_database_can_be_recovered(tmp_path: Path) -> None:
    steps = plan.build_plan(everything(), tmp_path)
    create = next(s for s in steps if s.command[1:4] == ["firestore", "databases", "create"])
    for words in (create.command, create.update or []):
        assert "--enable-pitr" in words and "--delete-protection" in words
    assert any(s.command[1:5] == ["firestore", "backups", "schedules", "create"]
               for s in steps)


def _store_collections() -> dict[str, str]:
    """attribute -> collection suffix, as the Firestore store opens them."""
    source = STORE.read_text()
    found = dict(re.findall(r"self\.(_\w+) = client\.collection\(f\"\{collection\}(\w*)\"\)",
                            source))
    found.update(dict.fromkeys(
        re.findall(r"self\.(_\w+) = client\.collection\(collection\)", source), ""))
    return found


def _erase_source() -> str:
    source = STORE.read_text()
    start = source.index("    def erase(")
    end = source.index("\n    def ", start + 1)
    return source[start:end]


def test_every_collection_with_personal_data_expires_or_is_erased(tmp_path: Path) -> None:
    # GIVEN the collections the Firestore store writes
    collections = _store_collections()
    assert "" in collections.values() and len(collections) >= 4
    ttl = {_flag(s.command, "collection-group"): s.command[5]
           for s in plan.build_plan(everything(), tmp_path)
           if s.command[1:5] == ["firestore", "fields", "ttls", "update"]}
    erase = _erase_source()
    for attribute, suffix in collections.items():
        # THEN infra knows it, and it goes away by a TTL policy or with the lead
        assert suffix in data_care.COLLECTIONS, f"leads{suffix} is not classified"
        ttl_field, erased, _ = data_care.COLLECTIONS[suffix]
        has_ttl = ttl.get(f"leads{suffix}") == data_care.TTL_FIELD and ttl_field is not None
        is_erased = erased and f"self.{attribute}" in erase
        assert has_ttl or is_erased, f"leads{suffix} neither expires nor is erased"
    # the history subcollection goes with the lead document
    assert "recursive_delete" in erase
