"""`python -m infra.deploy --project P --region R [--dry-run] [--destroy]`.

Builds the bundle, then runs the plan (infra/plan.py) step by step with the gcloud CLI.
`--dry-run` prints every command, in order, and changes nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from infra import bundle, config, plan

DEFAULT_BUNDLE = Path("build/bundle")


def run_step(step: plan.Step) -> None:
    if step.guard:
        exists = subprocess.run(step.guard, capture_output=True, check=False).returncode == 0
        if exists and not step.update:
            print(f"= {step.what}: exists")
            return
        command = step.update if exists and step.update else step.command
    else:
        command = step.command
    print(f"+ {step.what}")
    done = subprocess.run(command, capture_output=step.tolerate_exists, text=True, check=False)
    if done.returncode != 0:
        if step.tolerate_exists and "ALREADY_EXISTS" in (done.stderr or ""):
            return
        raise SystemExit(f"failed: {plan.shlex.join(command)}\n{done.stderr or ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    parser.add_argument("--project")
    parser.add_argument("--region")
    parser.add_argument("--config", type=Path, help="deploy configuration YAML")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    parser.add_argument("--destroy", action="store_true", help="remove what deploy created")
    parser.add_argument("--delete-data", action="store_true",
                        help="with --destroy: also delete the Firestore database")
    parser.add_argument("--yes", action="store_true", help="with --destroy: do not ask")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    args = parser.parse_args(argv)
    try:
        settings = config.load(args.config, {"project": args.project, "region": args.region})
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.destroy:
        steps = plan.destroy_plan(settings, args.delete_data)
        print("This removes:\n" + "\n".join(f"  - {s.what}" for s in steps))
        if not args.delete_data:
            print("  (the Firestore database and its data are kept: add --delete-data)")
        if args.dry_run:
            print("\n".join(s.shell() for s in steps))
            return 0
        if not args.yes and input("Type the project id to confirm: ").strip() != \
                settings.project:
            print("not confirmed; nothing removed")
            return 1
    else:
        source = args.bundle.resolve()
        if not args.dry_run:
            bundle.build(source)
        steps = plan.build_plan(settings, source)
        if args.dry_run:
            print("\n".join(s.shell() for s in steps))
            secrets = sorted({plan.secret_id(s) for f in plan.functions(settings)
                              for s in f.secrets})
            print("# then add each secret's value, e.g.: printf %s \"$VALUE\" | gcloud secrets "
                  "versions add SECRET --data-file=-  for: " + " ".join(secrets))
            return 0
    for step in steps:
        run_step(step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
