"""`mlops registry card TASK@ALIAS|TASK:VERSION [--output FILE] [--html]`: a registered version's
model card, which the Registrar wrote at registration (components.model_card) as artifacts of the
version's MLflow run. Read through the registry's read methods; nothing here writes to it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipelines.cli import GROUPS, CliError, console

# components.model_card.MARKDOWN_FILE / HTML_FILE (not imported: that would load TFX for `--help`).
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"


def read_card(reg, version, html: bool = False) -> str:
    """The card text of a registered version (VersionInfo); CliError when it has none."""
    from mlflow.exceptions import MlflowException

    name = HTML_FILE if html else MARKDOWN_FILE
    missing = (f"{version.name} v{version.version} has no model card ({name}): it was registered before the "
               f"Registrar wrote model cards")
    if not version.run_id:
        raise CliError(missing)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bar around the card
    with tempfile.TemporaryDirectory(prefix="model-card-") as folder:
        try:
            path = reg.client.download_artifacts(version.run_id, name, folder)
        except (MlflowException, OSError):
            raise CliError(missing) from None
        if not os.path.isfile(path):
            raise CliError(missing)
        return Path(path).read_text(encoding="utf-8")


def cmd_card(args) -> int:
    from pipelines.cli_registry import _open, version_for

    version = version_for(args, args.ref, action="described by its card")
    text = read_card(_open(args), version, html=args.html)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        console.print(f"model card of {version.name} v{version.version} written to {args.output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n", flush=True)
    return 0


def register(sub) -> None:
    add = GROUPS.get("registry")
    if add is None:  # COMMAND_MODULES lists this module after pipelines.cli_registry
        raise RuntimeError("pipelines.cli_model_card must be registered after pipelines.cli_registry")
    p = add("card", cmd_card, "the model card of a registered version (Markdown, or --html)")
    p.add_argument("ref", metavar="TASK@ALIAS|TASK:VERSION", help="e.g. census@production or census:3")
    p.add_argument("--output", metavar="FILE", help="write the card to FILE instead of printing it")
    p.add_argument("--html", action="store_true", help="the HTML card instead of the Markdown one")
