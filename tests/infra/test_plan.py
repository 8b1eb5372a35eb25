"""The deploy plan: well-formed for the real gcloud, idempotent, and validated first."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import yaml

from infra import bundle, check, config, deploy, plan

IDEMPOTENT_VERBS = {("services", "enable"), ("functions", "deploy"),
                    ("projects", "add-iam-policy-binding"),
                    ("topics", "add-iam-policy-binding"), ("secrets", "add-iam-policy-binding"),
                    ("functions", "add-invoker-policy-binding"),
                    ("subscriptions", "add-iam-policy-binding"),
                    # updates that set a fixed state
                    ("subscriptions", "update"), ("ttls", "update"), ("databases", "update")}
EVERYTHING = {
    "project": "leadscore-demo-42", "region": "europe-west1", "captcha": True, "tally": True,
    "handover_webhooks": True, "email_providers": list(config.EMAIL_PROVIDERS),
    "invoker_members": ["group:sales-ops@example.com", "user:ana@example.com"],
    "build_service_account": "builder@leadscore-demo-42.iam.gserviceaccount.com",
    "env": {"LEADSCORE_FORM_ALLOWED_ORIGINS": "https://a.b,https://c.d",
            "LEADSCORE_SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:ses-events",
            "LEADSCORE_SES_SUPPRESSION_REGION": "eu-west-1",
            "LEADSCORE_MANDRILL_WEBHOOK_URL": "https://example.test/email_webhook/mandrill"}}


def settings(**change: object) -> config.DeployConfig:
    return config.load(None, {"project": "leadscore-demo-42", "region": "europe-west1",
                              **change})  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def everything() -> config.DeployConfig:
    return config.DeployConfig.model_validate(EVERYTHING)


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory: pytest.TempPathFactory,
              everything: config.DeployConfig) -> list[plan.Step]:
    source = tmp_path_factory.mktemp("bundle")
    (source / "main.py").write_text("")
    return plan.build_plan(everything, source) + plan.destroy_plan(everything, True)


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the gcloud CLI is not installed")
def test_every_command_fails_only_for_lack_of_credentials(
        full_plan: list[plan.Step], everything: config.DeployConfig) -> None:
    # GIVEN gcloud with an empty configuration (no account, no credentials)
    assert len(check.commands(full_plan, everything, distinct=False)) > 150
    shapes = check.commands(full_plan, everything)
    assert len(shapes) > 40
    # WHEN one command of each shape of the plan (deploy and destroy) runs
    problems = check.validate(full_plan, everything)
    # THEN each one got as far as asking for credentials: no usage error anywhere
    assert problems == []


def test_a_usage_error_is_caught_by_the_check(everything: config.DeployConfig) -> None:
    if shutil.which("gcloud") is None:
        pytest.skip("the gcloud CLI is not installed")
    wrong = plan.Step("a typo", ["gcloud", "pubsub", "topics", "create", "t",
                                 "--retention-days=7"])
    assert [p.command for p in check.validate([wrong], everything)] == [
        plan.shlex.join(wrong.command)]


def test_every_step_can_run_again(full_plan: list[plan.Step]) -> None:
    for step in full_plan:
        if "delete" in step.command:
            continue
        words = [w for w in step.command[1:] if not w.startswith("-")]
        idempotent = any(pair in IDEMPOTENT_VERBS for pair in itertools.pairwise(words))
        assert idempotent or step.guard or step.tolerate_exists, step.shell()
        if step.guard:
            assert "describe" in step.guard or (step.guard_needs_output and "list" in step.guard)


def test_webhooks_are_public_and_the_api_and_decay_are_behind_iam(tmp_path: Path) -> None:
    steps = {s.what: s for s in plan.build_plan(settings(), tmp_path)}
    for name in ("ingest", "form_submission", "email_webhook", "purchase_webhook"):
        assert "--allow-unauthenticated" in steps[f"deploy {name}"].command
    assert "--no-allow-unauthenticated" in steps["deploy leads_api"].command
    for name in ("inactivity_decay", "inactivity_decay_shards"):
        command = steps[f"deploy {name}"].command
        assert not any("allow-unauthenticated" in w for w in command)
        assert any(w.startswith("--trigger-topic=") for w in command)
    # each function runs as its own service account, with only its own secrets
    email = steps["deploy email_webhook"].command
    assert any(w.startswith("--service-account=ls-email-webhook@") for w in email)
    secrets = next(w for w in email if w.startswith("--set-secrets="))
    assert "stripe" not in secrets and "api-token" not in secrets


def test_the_configured_group_may_call_the_private_api(tmp_path: Path) -> None:
    steps = plan.build_plan(settings(invoker_members=["group:sales-ops@example.com"]),
                            tmp_path)
    grants = [s.command for s in steps if "add-invoker-policy-binding" in s.command
              and "--member=group:sales-ops@example.com" in s.command]
    # (the dashboard is public behind its own sign-in unless `dashboard_access: iam`, below)
    assert [c[c.index("add-invoker-policy-binding") + 1] for c in grants] == ["leads_api"]


def test_firestore_access_is_limited_to_the_one_database(tmp_path: Path) -> None:
    grants = [s.command for s in plan.build_plan(settings(), tmp_path)
              if "--role=roles/datastore.user" in s.command]
    assert len(grants) == len(plan.functions(settings()))
    for command in grants:
        condition = next(w for w in command if w.startswith("--condition="))
        assert 'resource.name=="projects/leadscore-demo-42/databases/(default)"' in condition


def test_ses_suppression_gets_aws_credentials_from_secret_manager(tmp_path: Path) -> None:
    chosen = settings(env={"LEADSCORE_SES_SUPPRESSION_REGION": "eu-west-1"})
    steps = {s.what: s for s in plan.build_plan(chosen, tmp_path)}
    decay = next(w for w in steps["deploy inactivity_decay"].command
                 if w.startswith("--set-secrets="))
    assert "AWS_ACCESS_KEY_ID=leadscore-aws-access-key-id:latest" in decay
    assert "AWS_SECRET_ACCESS_KEY=leadscore-aws-secret-access-key:latest" in decay
    ingest = " ".join(steps["deploy ingest"].command)
    assert "AWS_" not in ingest


def test_secret_values_never_appear(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a value for every secret of a deployment
    names = [plan.secret_env(s) for s in plan.all_secrets(settings())]
    values = {name: f"s3cr3t-{i}-value-long-enough-for-a-token" for i, name in enumerate(names)}
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    monkeypatch.chdir(tmp_path)
    # WHEN the plan is printed
    code = deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1",
                        "--dry-run", "--secrets-file", str(secrets_file),
                        "--bundle", str(tmp_path / "bundle")])
    shown = capsys.readouterr()
    # THEN no value is in it: values reach gcloud only on stdin
    assert code == 0
    assert not any(v in shown.out + shown.err for v in values.values())
    steps = plan.build_plan(settings(), tmp_path)
    assert not any(v in " ".join(c) for s in steps for c in s.commands() for v in values.values())
    adds = [s for s in steps if "versions" in s.command and "add" in s.command]
    assert adds and all("--data-file=-" in s.command and s.stdin_secret for s in adds)


def test_the_dry_run_names_the_missing_secrets_and_exits_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the Stripe secret in the environment and no other
    for name in [plan.secret_env(s) for s in plan.all_secrets(settings())]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADSCORE_STRIPE_SECRET", "whsec_from_env")
    # WHEN the dry run prints the plan
    code = deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1",
                        "--dry-run", "--bundle", str(tmp_path / "bundle")])
    out = capsys.readouterr().out
    # THEN the whole plan is printed, as a table and as commands, and the bundle it names built
    assert code == deploy.MISSING_SECRETS
    assert "the plan:" in out and "deploy inactivity_decay_shards" in out
    assert "gcloud scheduler jobs" in out
    assert (tmp_path / "bundle" / "requirements.txt").exists()
    missing = out.split("secrets without a value here")[1]
    assert "LEADSCORE_API_TOKEN" in missing and "LEADSCORE_STRIPE_SECRET" not in missing


def test_a_real_run_stops_before_any_step_when_a_secret_has_no_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[plan.Step] = []
    monkeypatch.setattr(deploy, "run_step", lambda step, values=None: ran.append(step))
    monkeypatch.setattr(deploy, "_has_version", lambda settings, setting: False)
    for name in [plan.secret_env(s) for s in plan.all_secrets(settings())]:
        monkeypatch.delenv(name, raising=False)
    code = deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1",
                        "--bundle", str(tmp_path / "bundle")])
    assert code == deploy.MISSING_SECRETS and ran == []
    assert "LEADSCORE_API_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize("region", ["europe-west1", "europe-west10", "europe-west12",
                                    "me-central2", "us-east5", "northamerica-south1",
                                    "asia-southeast2", "africa-south1"])
def test_every_real_region_is_accepted_with_firestore_beside_it(region: str) -> None:
    assert settings(region=region).database_location == region


@pytest.mark.parametrize(("region", "multi"), [("europe-west3", "eur3"),
                                               ("us-east4", "nam5"),
                                               ("northamerica-northeast1", "nam5")])
def test_a_multi_region_database_on_request(region: str, multi: str) -> None:
    assert settings(region=region, firestore_multi_region=True).database_location == multi
    assert settings(region=region, firestore_location="nam7").database_location == "nam7"


@pytest.mark.parametrize(("change", "problem"), [
    ({"project": "X"}, "project"), ({"region": "moon"}, "region"),
    ({"schedule": "daily"}, "cron"), ({"email_providers": ["hotmail"]}, "email_providers"),
    ({"env": {"LEADSCORE_STRIPE_SECRET": "sk"}}, "Secret Manager"),
    ({"env": {"PATH": "/x"}}, "LEADSCORE_"),
    ({"email_providers": ["ses"]}, "LEADSCORE_SES_TOPIC_ARNS"),
    ({"region": "asia-northeast9"}, "firestore_location"),
    ({"firestore_location": "mars1"}, "not a Firestore location"),
    ({"invoker_members": ["sales-ops@example.com"]}, "group:"),
])
def test_a_bad_configuration_is_refused_before_anything_runs(
        tmp_path: Path, change: dict[str, object], problem: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"project": "leadscore-demo-42", "region": "europe-west1",
                                    **change}))
    assert deploy.main(["--config", str(path), "--dry-run"]) == 2
    assert problem in capsys.readouterr().err


def test_every_problem_of_a_configuration_is_listed_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a file with five unrelated mistakes, field-level and cross-field
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({
        "project": "X", "region": "europe-west1", "schedule": "daily",
        "env": {"PATH": "/x"}, "email_providers": ["ses"], "firestore_location": "mars1"}))
    # WHEN it is loaded
    assert deploy.main(["--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    # THEN each one is named
    for problem in ("project", "cron", "LEADSCORE_", "LEADSCORE_SES_TOPIC_ARNS",
                    "not a Firestore location"):
        assert problem in err, problem


def test_the_example_configuration_is_valid() -> None:
    example = Path(plan.__file__).with_name("deploy.example.yaml")
    loaded = config.load(example, {})
    assert loaded.project == "my-leadscore-project"
    assert "ses" in loaded.email_providers


def test_a_secrets_file_may_be_yaml_or_dotenv(tmp_path: Path) -> None:
    from infra import secrets

    dotenv = tmp_path / "a.env"
    dotenv.write_text("# comment\nexport LEADSCORE_API_TOKEN='tok,en'\nAWS_ACCESS_KEY_ID=AK\n")
    assert secrets.read_file(dotenv) == {"LEADSCORE_API_TOKEN": "tok,en",
                                         "AWS_ACCESS_KEY_ID": "AK"}
    as_yaml = tmp_path / "a.yaml"
    as_yaml.write_text("LEADSCORE_API_TOKEN: tok\nLEADSCORE_SENDGRID_PUBLIC_KEY: |\n  MFkw\n")
    assert secrets.read_file(as_yaml)["LEADSCORE_SENDGRID_PUBLIC_KEY"] == "MFkw\n"
    assert secrets.gather(["A", "B", "C"], {"A": "file"}, {"A": "env", "B": "env"}) == {
        "A": "file", "B": "env"}


def test_a_yaml_secrets_file_whose_values_hold_equals_signs_is_read_as_yaml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a YAML secrets file whose every value holds "=" (base64 padding, a whsec_ value),
    # and one key this deployment does not use (found by a deploy review: the file was read
    # as KEY=value lines, the secrets were lost and their text printed as unknown names)
    key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSm+g=="
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(f"LEADSCORE_SENDGRID_PUBLIC_KEY: {key}\n"
                            "LEADSCORE_STRIPE_SECRET: whsec_abc=\n"
                            "LEADSCORE_NOT_USED: x=y\n")
    monkeypatch.chdir(tmp_path)
    from infra import secrets

    # WHEN it is read, and the plan printed with it
    values = secrets.read_file(secrets_file)
    deploy.main(["--project", "leadscore-demo-42", "--region", "europe-west1", "--dry-run",
                 "--secrets-file", str(secrets_file), "--bundle", str(tmp_path / "bundle")])
    shown = capsys.readouterr()
    # THEN each value is its key's, whole, and no value is printed, only the unused name
    assert values == {"LEADSCORE_SENDGRID_PUBLIC_KEY": key,
                      "LEADSCORE_STRIPE_SECRET": "whsec_abc=", "LEADSCORE_NOT_USED": "x=y"}
    assert key not in shown.err + shown.out and "whsec_abc" not in shown.err + shown.out
    assert "LEADSCORE_NOT_USED" in shown.err
    assert secrets.shown_names(["A_B", "MFkw+g== x"]) == (
        "A_B, 1 entries that are not variable names")


def test_destroy_keeps_the_data_unless_told_and_asks_first(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    kept = plan.destroy_plan(settings(), delete_data=False)
    assert not any("databases" in s.command for s in kept)
    assert any("databases" in s.command for s in plan.destroy_plan(settings(), True))
    ran: list[plan.Step] = []
    monkeypatch.setattr(deploy, "run_step", ran.append)
    monkeypatch.setattr("builtins.input", lambda _: "some-other-project")
    args = ["--project", "leadscore-demo-42", "--region", "europe-west1", "--destroy"]
    assert deploy.main(args) == 1 and ran == []
    assert "the Firestore database and its data are kept" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda _: "leadscore-demo-42")
    assert deploy.main(args) == 0 and len(ran) == len(kept)


def test_the_bundle_requirements_come_from_the_lock() -> None:
    assert "--hash=sha256:" in bundle.locked_requirements()


def test_problems_across_fields_are_each_listed_on_their_own_line() -> None:
    # GIVEN a file whose fields are each valid but do not go together, twice
    with pytest.raises(config.ConfigError) as refused:
        settings(email_providers=["ses"], firestore_location="mars1",
                 env={"PATH": "/x", "LEADSCORE_X_SECRET": "s"})
    lines = str(refused.value).splitlines()
    # THEN every problem has its own line (the env ones are found before the cross checks)
    assert any("LEADSCORE_SES_TOPIC_ARNS" in line for line in lines)
    assert any("not a Firestore location" in line for line in lines)
    assert any("LEADSCORE_* variables" in line for line in lines)
    assert any("Secret Manager" in line and "LEADSCORE_" not in line.split(":")[0]
               for line in lines)
    assert "(4 problems)" in lines[0]


def _deploy_of(steps: list[plan.Step], name: str) -> list[str]:
    return next(s.command for s in steps if s.what == f"deploy {name}")


def test_the_dashboard_is_reachable_from_a_browser_behind_its_own_sign_in(
        tmp_path: Path) -> None:
    # GIVEN the default deployment with invoker members (a deploy review found the
    # dashboard deployed private: browsers send no identity token, so Cloud Run answered
    # every member 403 before the sign-in page)
    default = plan.build_plan(settings(invoker_members=["group:sales@example.com"]), tmp_path)
    # WHEN it is planned THEN the dashboard is public (its token sign-in guards every page)
    # and the leads API stays private to the members
    assert "--allow-unauthenticated" in _deploy_of(default, "dashboard")
    assert "--no-allow-unauthenticated" in _deploy_of(default, "leads_api")
    bound = {s.command[3] for s in default if "add-invoker-policy-binding" in s.command
             and "--member=group:sales@example.com" in s.command}
    assert bound == {"leads_api"}
    # AND with `dashboard_access: iam` (Identity-Aware Proxy in front) it is private to them
    private = plan.build_plan(settings(invoker_members=["group:sales@example.com"],
                                       dashboard_access="iam"), tmp_path)
    assert "--no-allow-unauthenticated" in _deploy_of(private, "dashboard")
    assert {s.command[3] for s in private if "add-invoker-policy-binding" in s.command
            and "--member=group:sales@example.com" in s.command} == {"leads_api", "dashboard"}


def test_hubspot_without_the_webhook_url_it_signs_is_refused_before_anything_runs() -> None:
    # GIVEN hubspot on but no LEADSCORE_HUBSPOT_WEBHOOK_URL (HubSpot's v3 signature covers
    # the URL it calls: without it every webhook would be 401 and HubSpot would give up)
    # WHEN the deploy file is loaded THEN it is refused, naming the setting
    with pytest.raises(config.ConfigError, match="LEADSCORE_HUBSPOT_WEBHOOK_URL") as refused:
        settings(hubspot=True)
    assert "(1 problems)" in str(refused.value)  # one line, not cut at its "; "
    url = "https://europe-west1-p.cloudfunctions.net/crm_webhook/hubspot"
    assert settings(hubspot=True, env={"LEADSCORE_HUBSPOT_WEBHOOK_URL": url}).hubspot

