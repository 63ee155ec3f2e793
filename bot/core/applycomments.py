"""Apply results as a Markdown comment, in parts that fit the forge's limit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bot.core.applies import ApplyResult, Outcome
from bot.core.ledgerchain import Anchor, anchor_text
from bot.core.markdown import Block, code, escape, html_code, pack


def render_apply(
    results: Iterable[ApplyResult], limit: int, kind: str = "apply", anchor: Anchor | None = None
) -> tuple[str, ...]:
    """The apply comment; `anchor` (the newest audit record of the apply) goes in as
    hidden data, so the ledger's head is held outside the database too."""
    hidden = (Block(f"<!-- {anchor_text(anchor)} -->"),) if anchor else ()
    return pack((*apply_blocks(tuple(results)), *hidden), limit, kind)


def apply_blocks(results: tuple[ApplyResult, ...]) -> Iterator[Block]:
    ok = all(r.succeeded for r in results)
    commit = results[0].commit[:12] if results else "?"
    yield Block(
        f"### gitops-bot apply: {'✅ done' if ok else '❌ failed'}\n\nCommit {code(commit)}"
    )
    for result in results:
        mode = " (dry apply: no cluster connection is configured)" if result.dry_run else ""
        yield Block(
            f"#### Environment {code(result.environment)} → cluster {code(result.cluster)}{mode}"
        )
        if result.failure:
            yield Block(f"**Not applied:** {escape(result.failure)}")
        failed = [o for o in result.objects if o.outcome is Outcome.FAILED]
        counts = ", ".join(
            f"{sum(o.outcome is kind for o in result.objects)} {kind}"
            for kind in Outcome
            if any(o.outcome is kind for o in result.objects)
        )
        yield Block(f"Objects: {counts or 'none'}.")
        for item in failed:
            yield Block(f"- ❌ {html_code(str(item.key))}: {escape(item.message)}")
        for item in result.objects:  # forced takeovers, objects prune left alone, ...
            if item.message and item.outcome is not Outcome.FAILED:
                yield Block(
                    f"- 📝 {item.outcome} {html_code(str(item.key))}: {escape(item.message)}"
                )
