"""`python -m infra.deploy --project P --region R [--dry-run] [--check] [--destroy]`.

Builds the bundle, then runs the plan (infra/plan.py) step by step with the gcloud CLI.
`--dry-run` builds the bundle, prints the plan as a table and every command, lists the
secrets that have no value here, and changes nothing (exit 3 when a secret lacks a value).
`--check` also has the real gcloud parse every command (one of each shape; `--check-all`
every one), offline, and exits 1 when gcloud refuses one.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from infra import bundle, check, config, plan, secrets
from infra.step import Step, fill

DEFAULT_BUNDLE = Path("build/bundle")
MISSING_SECRETS = 3


# How gcloud says a resource to delete is not there: NOT_FOUND (Pub/Sub, Secret Manager,
# Scheduler, Firestore, Cloud Functions gen2), IAM's "does not exist" / 404.
GONE = ("NOT_FOUND", "not found", "does not exist", "status=[404]")


def already_gone(stderr: str) -> bool:
    return any(sign in stderr for sign in GONE)


def run_step(step: Step, values: dict[str, str] | None = None) -> None:
    found: dict[str, str] = {}
    for name, command in step.captures.items():
        done = subprocess.run(fill(command, found), capture_output=True, text=True, check=False)
        if done.returncode != 0 or not done.stdout.strip():
            raise SystemExit(f"failed: {shlex.join(command)}\n{done.stderr}")
        found[name] = done.stdout.strip().splitlines()[0]
    if step.guard:
        probe = subprocess.run(fill(step.guard, found), capture_output=True, text=True,
                               check=False)
        exists = probe.returncode == 0 and (not step.guard_needs_output or
                                            bool(probe.stdout.strip()))
        if exists and not step.update:
            print(f"= {step.what}: exists")
            return
        command = step.update if exists and step.update else step.command
    else:
        command = step.command
    command = fill(command, found)
    stdin = (values or {}).get(step.stdin_secret, "") if step.stdin_secret else None
    if step.stdin_secret and not stdin:
        raise SystemExit(f"no value for {step.stdin_secret}: see --secrets-file")
    print(f"+ {step.what}")
    done = subprocess.run(command, capture_output=step.tolerate_exists or step.tolerate_missing,
                          text=True, check=False, input=stdin)
    if done.returncode != 0:
        if step.tolerate_exists and "ALREADY_EXISTS" in (done.stderr or ""):
            return
        if step.tolerate_missing and already_gone(done.stderr or ""):
            print(f"= {step.what}: already gone")
            return
        raise SystemExit(f"failed: {shlex.join(command)}\n{done.stderr or ''}")


def _verbs(step: Step) -> str:
    """`pubsub topics create`: the command group and verb, without the resource names."""
    return " ".join(w for w in check.shape(step.command) if not str(w).startswith("-"))


def show(steps: list[Step], console: Console) -> None:
    table = Table(title=f"the plan: {len(steps)} steps", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("gcloud")
    table.add_column("runs")
    for number, step in enumerate(steps, 1):
        runs = ("create or update" if step.update else "if missing" if step.guard
                else "always")
        table.add_row(str(number), step.what, _verbs(step), runs)
    console.print(table)
    print("\n# every command, in order:")
    print("\n".join(s.shell() for s in steps))


def _secret_values(settings: config.DeployConfig, path: Path | None) -> dict[str, str]:
    names = [plan.secret_env(s) for s in plan.all_secrets(settings)]
    from_file = secrets.read_file(path) if path else {}
    unknown = sorted(set(from_file) - set(names))
    if unknown:
        print(f"note: {path} names secrets this deployment does not use: "
              f"{secrets.shown_names(unknown)}",
              file=sys.stderr)
    return secrets.gather(names, from_file)


def _has_version(settings: config.DeployConfig, setting: str) -> bool:
    probe = ["gcloud", "secrets", "versions", "describe", "latest",
             f"--secret={plan.secret_id(setting)}", f"--project={settings.project}"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project")
    parser.add_argument("--region")
    parser.add_argument("--config", type=Path, help="deploy configuration YAML")
    parser.add_argument("--secrets-file", type=Path,
                        help="secret values, YAML or KEY=value lines (e.g. "
                             "LEADSCORE_STRIPE_SECRET=whsec_...); the environment also counts")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    parser.add_argument("--check", action="store_true",
                        help="with the dry run: have gcloud parse every command, offline")
    parser.add_argument("--check-all", action="store_true",
                        help="with --check: every command, not one of each shape (slower)")
    parser.add_argument("--destroy", action="store_true", help="remove what deploy created")
    parser.add_argument("--delete-data", action="store_true",
                        help="with --destroy: also delete the Firestore database")
    parser.add_argument("--yes", action="store_true", help="with --destroy: do not ask")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    return parser


def _destroy(settings: config.DeployConfig, args: argparse.Namespace) -> int:
    steps = plan.destroy_plan(settings, args.delete_data)
    print("This removes:\n" + "\n".join(f"  - {s.what}" for s in steps))
    if not args.delete_data:
        print("  (the Firestore database and its data are kept: add --delete-data)")
    if args.dry_run:
        print("\n".join(s.shell() for s in steps))
        return 0
    if not args.yes and input("Type the project id to confirm: ").strip() != settings.project:
        print("not confirmed; nothing removed")
        return 1
    for step in steps:
        run_step(step)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = config.load(args.config, {"project": args.project, "region": args.region})
        values = _secret_values(settings, args.secrets_file)
        secrets.check_strength(values)
    except (config.ConfigError, secrets.SecretsFileError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.destroy:
        return _destroy(settings, args)
    source = bundle.build(args.bundle.resolve())
    steps = plan.build_plan(settings, source)
    wanted = plan.all_secrets(settings)
    if args.dry_run or args.check or args.check_all:
        show(steps, Console())
        status = 0
        if args.check or args.check_all:
            problems = check.validate(steps, settings, distinct=not args.check_all)
            for problem in problems:
                print(f"gcloud refused: {problem.command}\n  {problem.message}",
                      file=sys.stderr)
            print(f"# gcloud parsed every command ({len(steps)} steps)" if not problems
                  else f"# {len(problems)} commands refused")
            status = 1 if problems else 0
        missing = [plan.secret_env(s) for s in wanted if plan.secret_env(s) not in values]
        if missing:
            print("# secrets without a value here (give them with --secrets-file or the "
                  "environment, unless Secret Manager already holds one): " + " ".join(missing))
        return status or (MISSING_SECRETS if missing else 0)
    # A secret Secret Manager already holds (an earlier deploy) needs no value now.
    absent = [plan.secret_env(s) for s in wanted
              if plan.secret_env(s) not in values and not _has_version(settings, s)]
    values |= secrets.prompt_for(absent)
    try:
        secrets.check_strength(values)
    except secrets.SecretsFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    lacking = [name for name in absent if name not in values]
    if lacking:
        print("these secrets have no value, and the functions that read them would not "
              "start: " + " ".join(lacking) + "\ngive them with --secrets-file FILE or the "
              "environment; nothing was changed", file=sys.stderr)
        return MISSING_SECRETS
    for step in steps:
        run_step(step, values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
