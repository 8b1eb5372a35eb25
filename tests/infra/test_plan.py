"""The deploy plan: well-formed for the real gcloud, idempotent, and validated first."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra import config, deploy, plan

IDEMPOTENT_VERBS = {("services", "enable"), ("functions", "deploy"),
                    ("projects", "add-iam-policy-binding"),
                    ("topics", "add-iam-policy-binding"), ("secrets", "add-iam-policy-binding"),
                    ("functions", "add-invoker-policy-binding")}
NO_CREDENTIALS = ("You do not currently have an active account selected",
                  "Your current active account", "There was a problem refreshing your "
                  "current auth tokens", "credentials")


def settings(**change: object) -> config.DeployConfig:
    return config.load(None, {"project": "leadscore-demo-42", "region": "europe-west1",
                              **change})  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory: pytest.TempPathFactory) -> list[plan.Step]:
    source = tmp_path_factory.mktemp("bundle")
    (source / "main.py").write_text("")
    everything = config.DeployConfig.model_validate({
        "project": "leadscore-demo-42", "region": "europe-west1", "captcha": True,
        "handover_webhooks": True, "env": {"LEADSCORE_FORM_ALLOWED_ORIGINS": "https://a.b,https://c.d"}})
    return plan.build_plan(everything, source) + plan.destroy_plan(everything, True)


def _gcloud(command: list[str], home: str) -> tuple[list[str], int, str]:
    env = {**os.environ, "CLOUDSDK_CONFIG": home, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    env.pop("CLOUDSDK_CORE_PROJECT", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
    return command, done.returncode, done.stderr


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the gcloud CLI is not installed")
def test_every_command_fails_only_for_lack_of_credentials(full_plan: list[plan.Step],
                                                          tmp_path: Path) -> None:
    # GIVEN gcloud with an empty configuration (no account, no credentials)
    commands = [c for step in full_plan for c in step.commands()]
    assert len(commands) > 60
    # WHEN every command of the plan (deploy and destroy) runs
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: _gcloud(c, str(tmp_path)), commands))
    # THEN each one got as far as asking for credentials: no usage error anywhere
    wrong = [(plan.shlex.join(c), rc, err.strip().splitlines()[:2]) for c, rc, err in results
             if rc == 0 or not any(marker in err for marker in NO_CREDENTIALS)]
    assert wrong == []


def test_every_step_can_run_again(full_plan: list[plan.Step]) -> None:
    for step in full_plan:
        if "delete" in step.command:
            continue
        words = [w for w in step.command[1:] if not w.startswith("-")]
        idempotent = any(pair in IDEMPOTENT_VERBS for pair in itertools.pairwise(words))
        assert idempotent or step.guard or step.tolerate_exists, step.shell()
        if step.guard:
            assert "describe" in step.guard


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


def test_secret_values_never_appear(tmp_path: Path) -> None:
    shown = "\n".join(s.shell() for s in plan.build_plan(settings(), tmp_path))
    assert "versions add" not in shown and "--data-file" not in shown


@pytest.mark.parametrize(("change", "problem"), [
    ({"project": "X"}, "project"), ({"region": "moon"}, "region"),
    ({"schedule": "daily"}, "cron"), ({"email_providers": ["hotmail"]}, "email_providers"),
    ({"env": {"LEADSCORE_STRIPE_SECRET": "sk"}}, "Secret Manager"),
    ({"env": {"PATH": "/x"}}, "LEADSCORE_"),
])
def test_a_bad_configuration_is_refused_before_anything_runs(
        tmp_path: Path, change: dict[str, object], problem: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"project": "leadscore-demo-42", "region": "europe-west1",
                                    **change}))
    assert deploy.main(["--config", str(path), "--dry-run"]) == 2
    assert problem in capsys.readouterr().err


def test_the_example_configuration_is_valid() -> None:
    example = Path(plan.__file__).with_name("deploy.example.yaml")
    assert config.load(example, {}).project == "my-leadscore-project"


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
