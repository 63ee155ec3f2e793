"""Rollback and promotion decisions as pure data: which commit, which files, which lines."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_github_rollbacks import _succeeded

from bot.core.audit import AuditRecord
from bot.core.promotions import (
    ambiguous_keys,
    edit_text,
    image_sites,
    promotions,
    repository,
)
from bot.core.proposalresume import BranchTip, Resume, resume_step
from bot.core.rollbacks import (
    FileRestore,
    ProposalRefused,
    read_rollback_trailer,
    restored_files,
    rollback_target,
    rollback_trailer,
)

REPO = "github:Codertocat/Hello-World"
A, B, C = "a" * 40, "b" * 40, "c" * 40


def _records(*applies: tuple[str, str]) -> list[AuditRecord]:
    """(commit, result) in ledger order, all of environment prod of REPO."""
    return [
        AuditRecord(i + 1, replace(_succeeded("prod", commit, 10 + i), result=result), "0" * 64)
        for i, (commit, result) in enumerate(applies)
    ]


def test_the_target_is_the_last_success_before_the_current_commit() -> None:
    records = _records((A, "succeeded"), (B, "failed"), (B, "succeeded"), (C, "succeeded"))
    records.append(AuditRecord(9, replace(records[0].entry, commit=C, result="dry-run"), ""))

    target = rollback_target(records, "prod", REPO)

    assert (target.current.entry.commit, target.target.entry.commit) == (C, B)
    assert [r.entry.commit for r in target.undone] == [C]


def test_a_re_applied_commit_is_not_a_target_and_other_repositories_do_not_count() -> None:
    records = _records((A, "succeeded"), (B, "succeeded"), (B, "succeeded"))
    elsewhere = replace(records[1].entry, commit=C, repository="github:other/repo")
    records.append(AuditRecord(10, elsewhere, ""))

    target = rollback_target(records, "prod", REPO)

    assert (target.current.entry.commit, target.target.entry.commit) == (B, A)
    assert [r.entry.commit for r in target.undone] == [B]


def test_to_names_an_earlier_applied_commit_by_prefix() -> None:
    records = _records((A, "succeeded"), (B, "succeeded"), (C, "succeeded"))

    target = rollback_target(records, "prod", REPO, to="aaaaaaa")

    assert target.target.entry.commit == A
    assert [r.entry.commit for r in target.undone] == [B, C]


@pytest.mark.parametrize(
    ("applies", "to", "message"),
    [
        ((), None, "holds no successful apply of 'prod'"),
        (((A, "succeeded"), (A, "succeeded")), None, "there is no earlier commit"),
        (((A, "failed"), (B, "succeeded")), None, "there is no earlier commit"),
        (((A, "succeeded"), (B, "succeeded")), "cccccccc", "can go back to: aaaaaaaaaaaa"),
        (((A, "succeeded"), (B, "succeeded")), "bbbbbbb", "already runs bbbbbbbbbbbb"),
        (((A, "succeeded"), (B, "succeeded")), "main", "'main' is not a commit id"),
    ],
)
def test_what_cannot_be_rolled_back_says_why(
    applies: tuple[tuple[str, str], ...], to: str | None, message: str
) -> None:
    with pytest.raises(ProposalRefused, match=message):
        rollback_target(_records(*applies), "prod", REPO, to=to)


def test_restored_files_write_back_and_delete() -> None:
    now = {"d/a.yaml": "1", "d/b.yaml": "2", "d/new.yaml": "3"}
    then = {"d/a.yaml": "1", "d/b.yaml": "9", "d/old.yaml": "8"}

    assert restored_files(now, then) == (
        FileRestore("d/b.yaml", "9"),
        FileRestore("d/old.yaml", "8"),
        FileRestore("d/new.yaml", None),
    )


def test_the_rollback_trailer_reads_back() -> None:
    message = f"Roll back prod\n\n{rollback_trailer('prod', A)}\n".encode()
    assert read_rollback_trailer(message) == ("prod", A)
    assert read_rollback_trailer(b"Roll back prod\n\nGitops-Bot-Rollback: prod main\n") is None


def test_kustomize_images_and_helm_values_keys_are_promoted_by_key() -> None:
    kustomization = (
        "resources: [../base]\nimages:\n  - name: web  # the shop\n"
        "    newTag: '1.0'\n  - name: api\n    newName: r/api\n    newTag: 2.0\n"
    )
    source = image_sites("s/kustomization.yaml", kustomization.replace("'1.0'", "'1.4'"))
    target = image_sites("t/kustomization.yaml", kustomization)
    values = 'image:\n  repository: r/web\n  tag: "1.0"  # pinned\nreplicas: 3\n'
    helm_source = image_sites("s/values.yaml", values.replace("1.0", "1.1"), ["image.tag"])
    helm_target = image_sites("t/values.yaml", values, ["image.tag"])

    changes = promotions(source, target)
    helm = promotions(helm_source, helm_target)

    assert [(c.site.key, c.site.value, c.new) for c in changes] == [
        ("kustomize:web:newTag", "1.0", "1.4")
    ]
    assert edit_text(kustomization, changes) == kustomization.replace("'1.0'", "'1.4'")
    assert edit_text(values, helm) == values.replace('"1.0"', '"1.1"')


def test_a_plain_value_that_would_read_as_a_number_is_quoted() -> None:
    text = "images:\n- name: web\n  newTag: v1\n"
    [site] = image_sites("kustomization.yaml", text)
    [change] = promotions(
        [replace(site, value="1.30", path="other")],
        [site],
    )
    assert edit_text(text, [change]) == 'images:\n- name: web\n  newTag: "1.30"\n'


def test_ambiguous_block_and_broken_values_are_left_alone() -> None:
    two = "a:\n  image: r/web:1\nb:\n  image: r/web:2\n"
    block = "image: |\n  r/web:1\n"
    loop = "a: &x\n  b: *x\n  image: r/web:1\n"

    assert ambiguous_keys(image_sites("s.yaml", two)) == ["image:r/web"]
    assert promotions(image_sites("s.yaml", two), image_sites("t.yaml", "image: r/web:0\n")) == []
    assert image_sites("t.yaml", block) == []
    assert [s.value for s in image_sites("t.yaml", loop)] == ["r/web:1"]
    assert image_sites("t.yaml", "image: [unclosed\n") == []


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("registry.example.com:5000/team/web:1.2", "registry.example.com:5000/team/web"),
        ("web@sha256:" + "a" * 64, "web"),
        ("ghcr.io/o/web:1.2@sha256:" + "a" * 64, "ghcr.io/o/web"),
        ("nginx", "nginx"),
    ],
)
def test_an_image_is_named_without_tag_or_digest(reference: str, name: str) -> None:
    assert repository(reference) == name


@pytest.mark.parametrize(
    ("tip", "step"),
    [
        (None, Resume.CREATE_BRANCH),
        (BranchTip(B, ("a" * 40,), "Merge #1"), Resume.COMMIT),
        (BranchTip(C, (B,), "Roll back prod\n\ntrailer\n"), Resume.OPEN),
    ],
)
def test_a_retry_resumes_at_the_first_step_left(tip: BranchTip | None, step: Resume) -> None:
    assert resume_step(tip, "gitops-bot-x", B, "Roll back prod\n\ntrailer") is step


@pytest.mark.parametrize(
    "tip",
    [
        BranchTip(C, ("a" * 40,), "Roll back prod"),  # the default branch moved since
        BranchTip(C, (B,), "someone else's commit"),
        BranchTip(C, (B, "a" * 40), "Roll back prod"),
    ],
)
def test_a_branch_that_is_not_this_jobs_work_is_refused(tip: BranchTip) -> None:
    with pytest.raises(ProposalRefused, match="delete the branch and ask again"):
        resume_step(tip, "gitops-bot-x", B, "Roll back prod")
