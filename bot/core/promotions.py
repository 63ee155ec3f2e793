"""Promotion: the image references of one environment's files, carried into another's by
line edits that leave every other byte of the file as it was.

PyYAML can compose a file into nodes that know where each scalar starts and ends, but it
cannot write a file back with its comments, quoting and layout: a load-and-dump round
trip would rewrite every line. So the files are only read with PyYAML (`compose_all`, safe
and position-aware), and each change is a replacement of exactly the characters of one
scalar on one line, in the quoting style it was written in.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1_000_000  # larger files are left alone
_KUSTOMIZATIONS = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
_KUSTOMIZE_FIELDS = ("newName", "newTag", "digest")
_STR = "tag:yaml.org,2002:str"
_TEXT_TAGS = frozenset({_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})  # 1.2 tags
_LINE_BREAK = re.compile(r"(\r\n|\r|\n|\x85|\u2028|\u2029)")  # what PyYAML counts as a line


@dataclass(frozen=True)
class ImageSite:
    """Where one image reference is written: file, 0-based line, columns [start, end)."""

    key: str  # what a reference is matched by across environments
    value: str
    path: str
    line: int
    start: int
    end: int
    style: str | None  # None (plain), "'" or '"'


@dataclass(frozen=True)
class ImageChange:
    """One reference of the target environment and the value it takes from the source."""

    site: ImageSite
    new: str


def image_sites(path: str, text: str, values_keys: Sequence[str] = ()) -> list[ImageSite]:
    """The image references of one file: `image:` values, kustomize `images:` fields, and
    (in Helm values files) the dotted `values_keys`. A file that is not YAML has none."""
    if len(text) > MAX_FILE_BYTES:
        return []
    try:
        roots = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except yaml.YAMLError:
        return []
    kustomization = posixpath.basename(path) in _KUSTOMIZATIONS
    sites: list[ImageSite] = []
    for root in roots:
        sites += _image_values(path, root, set())
        sites += _kustomize_images(path, root) if kustomization else []
        sites += [s for key in values_keys for s in _values_key(path, root, key)]
    return sites


def _image_values(path: str, node: Node, seen: set[int]) -> Iterator[ImageSite]:
    """Every `image: <scalar>` in the tree (containers, init containers, CRs alike)."""
    if id(node) in seen:  # an alias points back at a node already walked
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if _is_key(key, "image") and _is_text(value):
                yield _site(f"image:{repository(value.value)}", path, value)
            else:
                yield from _image_values(path, value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _image_values(path, item, seen)


def _kustomize_images(path: str, root: Node) -> Iterator[ImageSite]:
    """kustomize `images:` entries, matched by their `name` and field."""
    entries = _child(root, "images")
    if not isinstance(entries, SequenceNode):
        return
    for entry in entries.value:
        name = _child(entry, "name")
        if not _is_text(name):
            continue
        for field in _KUSTOMIZE_FIELDS:
            value = _child(entry, field)
            if _is_text(value):
                yield _site(f"kustomize:{name.value}:{field}", path, value)


def _values_key(path: str, root: Node, dotted: str) -> Iterator[ImageSite]:
    node: Node | None = root
    for part in dotted.split("."):
        node = _child(node, part) if node is not None else None
    if _is_text(node):
        yield _site(f"values:{dotted}", path, node)


def repository(reference: str) -> str:
    """An image reference without its tag and digest: what names the image across tags."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def promotions(source: Sequence[ImageSite], target: Sequence[ImageSite]) -> list[ImageChange]:
    """The target's references that take a different value from the source. A key the
    source writes with two different values is ambiguous and is left alone."""
    values: dict[str, set[str]] = {}
    for site in source:
        values.setdefault(site.key, set()).add(site.value)
    return [
        ImageChange(site, next(iter(values[site.key])))
        for site in target
        if len(values.get(site.key, ())) == 1 and site.value not in values[site.key]
    ]


def ambiguous_keys(source: Sequence[ImageSite]) -> list[str]:
    """Keys the source writes with more than one value (they are not promoted)."""
    values: dict[str, set[str]] = {}
    for site in source:
        values.setdefault(site.key, set()).add(site.value)
    return sorted(key for key, found in values.items() if len(found) > 1)


def edit_text(text: str, changes: Sequence[ImageChange]) -> str:
    """`text` with each change written over its scalar; every other character kept."""
    parts = _LINE_BREAK.split(text)  # lines at even positions, their breaks in between
    by_line: dict[int, list[ImageChange]] = {}
    for change in changes:
        by_line.setdefault(change.site.line, []).append(change)
    for line, found in by_line.items():
        content = parts[2 * line]
        for change in sorted(found, key=lambda c: -c.site.start):  # right to left
            site = change.site
            content = (
                content[: site.start] + scalar_text(change.new, site.style) + content[site.end :]
            )
        parts[2 * line] = content
    return "".join(parts)


def scalar_text(value: str, style: str | None) -> str:
    """`value` written as a YAML scalar in `style`, or double-quoted when plain is unsafe."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None and _reads_back_plain(value):
        return value
    return json.dumps(value)


def _reads_back_plain(value: str) -> bool:
    """Whether `value`, written plain after a key (block or flow), reads back as that same
    string: not a number like 1.30, not cut at a ` #`, a `: ` or a `,`."""
    if value != value.strip() or any(c in value for c in "\n,[]{}"):  # flow context too
        return False
    try:
        node = yaml.compose(f"k: {value}", Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False
    found = _child(node, "k")
    return isinstance(found, ScalarNode) and found.tag == _STR and found.value == value


def _site(key: str, path: str, node: ScalarNode) -> ImageSite:
    return ImageSite(
        key,
        node.value,
        path,
        node.start_mark.line,
        node.start_mark.column,
        node.end_mark.column,
        node.style if node.style in ("'", '"') else None,
    )


def _child(node: Node | None, name: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    return next((value for key, value in node.value if _is_key(key, name)), None)


def _is_key(node: Node, name: str) -> bool:
    return isinstance(node, ScalarNode) and node.value == name


def _is_text(node: Node | None) -> TypeGuard[ScalarNode]:
    """A scalar on one line: a block or folded scalar spans lines and is left alone."""
    return (
        isinstance(node, ScalarNode)
        and node.tag in _TEXT_TAGS
        and node.style not in ("|", ">")
        and node.start_mark.line == node.end_mark.line
        and bool(node.value)
    )


def files_changed(
    texts: Mapping[str, str], changes: Sequence[ImageChange]
) -> dict[str, tuple[str, tuple[ImageChange, ...]]]:
    """Per file of the target: its new text and the changes made in it."""
    by_path: dict[str, list[ImageChange]] = {}
    for change in changes:
        by_path.setdefault(change.site.path, []).append(change)
    return {
        path: (edit_text(texts[path], found), tuple(found))
        for path, found in sorted(by_path.items())
    }
