"""The pure decisions behind a plan: which commits to compare, which check writes to make."""

from __future__ import annotations

import pytest

from bot.core.checkwrites import CheckSeen, CheckWrite, check_write
from bot.core.mergepreviews import Mergeability, MergeResult, preview_target
from bot.core.supersession import stale_heads

BASE, HEAD, MAIN, MERGE = "b" * 40, "h" * 40, "m" * 40, "e" * 40


def test_the_merge_result_of_the_head_is_previewed_against_its_first_parent() -> None:
    target = preview_target(
        HEAD, BASE, Mergeability.MERGEABLE, MergeResult(MERGE, (MAIN, HEAD)), "GitHub"
    )

    assert (target.base, target.rendered, target.merged) == (MAIN, MERGE, True)
    assert target.note.startswith(f"previewing the merge result {MERGE[:12]}")


@pytest.mark.parametrize(
    ("state", "result", "why"),
    [
        (Mergeability.CONFLICT, None, "the head conflicts with the base branch on GitHub"),
        (Mergeability.UNKNOWN, None, "GitHub has not computed the merge result yet"),
        (Mergeability.MERGEABLE, None, "GitHub keeps no merge result for this pull request"),
        (Mergeability.MERGEABLE, MergeResult(MERGE, (MAIN, "o" * 40)), "of an older head"),
        (Mergeability.MERGEABLE, MergeResult(MERGE, (HEAD,)), "of an older head"),
    ],
)
def test_without_a_merge_result_of_the_head_the_head_is_previewed_and_the_note_says_why(
    state: Mergeability, result: MergeResult | None, why: str
) -> None:
    target = preview_target(HEAD, BASE, state, result, "GitHub")

    assert (target.base, target.rendered, target.merged) == (BASE, HEAD, False)
    assert why in target.note and "not the merge result" in target.note
    assert ("conflict" in target.note) is (state is Mergeability.CONFLICT)


@pytest.mark.parametrize(
    ("seen", "pending", "write"),
    [
        (None, True, CheckWrite.CREATE),
        (None, False, CheckWrite.CREATE),
        (CheckSeen(True, "same"), True, CheckWrite.NONE),
        (CheckSeen(False, "same"), False, CheckWrite.NONE),
        (CheckSeen(True, "other"), False, CheckWrite.UPDATE),  # conclude the open check
        (CheckSeen(True, "same"), False, CheckWrite.UPDATE),
        (CheckSeen(False, "other"), False, CheckWrite.CREATE),  # never reopen a concluded one
        (CheckSeen(False, "other"), True, CheckWrite.CREATE),
    ],
)
def test_a_check_is_written_only_when_it_reads_otherwise(
    seen: CheckSeen | None, pending: bool, write: CheckWrite
) -> None:
    assert check_write(seen, pending, "same") is write


def test_stale_heads_are_the_others_once_each_in_order() -> None:
    assert stale_heads(HEAD, BASE, "", HEAD, MAIN, BASE) == (BASE, MAIN)
    assert stale_heads(HEAD, HEAD, "") == ()
