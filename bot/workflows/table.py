"""The one table of workflows: a job's kind names the workflow that decodes, runs and
reports it. A new workflow is a module in bot/workflows/ and one line here."""

from __future__ import annotations

from typing import Any

from bot.workflows.apply_merge import WORKFLOW as APPLY_MERGE
from bot.workflows.catch_up import SCAN_WORKFLOW as CATCH_UP_SCAN
from bot.workflows.catch_up import WORKFLOW as CATCH_UP
from bot.workflows.check_drift import WORKFLOW as CHECK_DRIFT
from bot.workflows.context import Workflow
from bot.workflows.notify import WORKFLOW as NOTIFY
from bot.workflows.plan_pull_request import WORKFLOW as PLAN_PULL_REQUEST
from bot.workflows.pr_command import WORKFLOW as PR_COMMAND

WORKFLOWS: dict[str, Workflow[Any]] = {
    workflow.kind: workflow
    for workflow in (
        PLAN_PULL_REQUEST,
        APPLY_MERGE,
        PR_COMMAND,
        CHECK_DRIFT,
        NOTIFY,
        CATCH_UP_SCAN,
        CATCH_UP,
    )
}
