"""The runner against a stand-in for the gcloud CLI (the true outside edge): values reach
gcloud on stdin only, and values an earlier step made are looked up and passed on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra import deploy, plan

FAKE_GCLOUD = '''#!{python}
import json, sys
args = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"args": args, "stdin": stdin}}) + "\\n")
if args[:2] == ["functions", "describe"]:
    print("projects/p/locations/europe-west1/triggers/" + args[2] + "-123")
elif args[:3] == ["eventarc", "triggers", "describe"]:
    print("projects/p/subscriptions/eventarc-" + args[3].rsplit("/", 1)[-1] + "-sub")
elif args[:2] == ["projects", "describe"]:
    print("987654321")
elif "describe" in args or "list" in args:
    sys.exit(1)  # a new project: nothing exists yet
'''


def test_a_first_deploy_adds_each_secret_from_stdin_then_wires_the_dead_letters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a brand-new project (every describe fails) and a value for every secret
    log = tmp_path / "gcloud.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable, log=str(log)))
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    chosen = plan.all_secrets(deploy.config.load(None, {"project": "leadscore-demo-42",
                                                        "region": "europe-west1"}))
    values = {plan.secret_env(s): f"value-of-{s}-long-enough-to-pass" for s in chosen}
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
    # WHEN the deploy runs
    code = deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1",
                        "--secrets-file", str(secrets_file),
                        "--bundle", str(tmp_path / "bundle")])
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # THEN every secret got its value on stdin, never in an argument
    assert code == 0
    added = {c["args"][3]: c["stdin"] for c in calls if c["args"][:3] == ["secrets",
                                                                           "versions", "add"]}
    assert added == {plan.secret_id(s): f"value-of-{s}-long-enough-to-pass" for s in chosen}
    assert not any(v in " ".join(c["args"]) for c in calls for v in values.values())
    # AND before the first function that binds them was deployed
    first_deploy = next(i for i, c in enumerate(calls) if c["args"][:2] == ["functions",
                                                                            "deploy"])
    last_add = max(i for i, c in enumerate(calls) if c["args"][:3] == ["secrets", "versions",
                                                                       "add"])
    assert last_add < first_deploy
    # AND each decay function's own trigger subscription got the dead-letter policy
    updated = [c["args"][3] for c in calls if c["args"][:3] == ["pubsub", "subscriptions",
                                                                 "update"]]
    assert updated == ["projects/p/subscriptions/eventarc-inactivity_decay-123-sub",
                       "projects/p/subscriptions/eventarc-inactivity_decay_shards-123-sub"]
    agent = "--member=serviceAccount:service-987654321@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert sum(agent in c["args"] for c in calls) == 3  # the dead-letter topic, 2 subscriptions


GONE_GCLOUD = '''#!{python}
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:3] == ["scheduler", "jobs", "delete"]:
    sys.stderr.write("ERROR: (gcloud.scheduler.jobs.delete) NOT_FOUND: Job not found.\\n")
    sys.exit(1)
if args[:2] == ["functions", "delete"] and args[2] == {refused!r}:
    sys.stderr.write("ERROR: (gcloud.functions.delete) PERMISSION_DENIED: denied\\n")
    sys.exit(1)
'''


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: str) -> Path:
    log = tmp_path / "gcloud.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(GONE_GCLOUD.format(python=sys.executable, log=str(log), refused=refused))
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return log


def test_destroy_goes_on_past_what_is_already_gone_and_stops_at_a_real_refusal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a project whose first deploy stopped before the decay tick existed (gcloud
    # answers NOT_FOUND for it; found by a deploy review: --destroy stopped there)
    args = ["--project", "leadscore-demo-42", "--region", "europe-west1", "--destroy", "--yes"]
    steps = plan.destroy_plan(deploy.config.load(None, {"project": "leadscore-demo-42",
                                                        "region": "europe-west1"}), False)
    log = _fake(tmp_path, monkeypatch, refused="none")
    # WHEN --destroy runs
    code = deploy.main(args)
    # THEN every step was tried and the run succeeds
    assert code == 0 and len(log.read_text().splitlines()) == len(steps)
    # AND a refusal that is not NOT_FOUND (no permission) still stops it there
    other = tmp_path / "other"
    other.mkdir()
    log = _fake(other, monkeypatch, refused="ingest")
    with pytest.raises(SystemExit, match="PERMISSION_DENIED"):
        deploy.main(args)
    assert json.loads(log.read_text().splitlines()[-1])[:3] == ["functions", "delete", "ingest"]


@pytest.mark.parametrize("weak", ["LEADSCORE_DASHBOARD_TOKENS", "LEADSCORE_API_TOKEN",
                                  "LEADSCORE_PURCHASE_SECRET", "LEADSCORE_POSTMARK_BASIC_AUTH"])
def test_a_short_token_of_our_own_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        weak: str) -> None:
    # GIVEN every secret, one of our own tokens short (the second of a rotated pair)
    log = _fake(tmp_path, monkeypatch, refused="none")
    chosen = plan.all_secrets(deploy.config.load(None, {"project": "leadscore-demo-42",
                                                        "region": "europe-west1"}))
    values = {plan.secret_env(s): f"value-of-{s}-long-enough-to-pass" for s in chosen}
    user = "hook-user:" if weak.endswith("_BASIC_AUTH") else ""
    values[weak] = f"{user}a-strong-enough-secret-of-30-chars,{user}hunter2"
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    # WHEN the deploy runs
    code = deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1",
                        "--secrets-file", str(secrets_file),
                        "--bundle", str(tmp_path / "bundle")])
    # THEN it stops before any gcloud call, naming the variable and never the value
    err = capsys.readouterr().err
    assert code == 2 and not log.exists()
    assert weak in err and "at least 24 characters" in err and "hunter2" not in err
