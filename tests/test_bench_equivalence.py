"""The fast paths the benchmarks led to give exactly what the reference code gives.

A compiled JSON-Schema validator that answers "valid" for the Kubernetes schemas keeps
`validate` and `plan` fast; it is held here to its reference on the same inputs: a
generated corpus of real-shaped manifests and the same corpus broken in many ways.
The YAML loader's reference is Kubernetes itself (tests/test_yaml_parity.py); here the
generated corpus is checked to mean the same to it as to PyYAML, as plain manifests do.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.brokenmanifests import broken, corpus_manifests, policy_breaking
from helpers.manifests import widget_crd
from hypothesis import given, settings
from hypothesis import strategies as st

import bot.stages.validate as stages_validate
from benchmarks.manifests import ManifestFile, generate
from bot.core.checks import check_manifests
from bot.core.documents import DEFAULT_LIMITS, Limits, parse_documents
from bot.core.findings import Finding
from bot.core.manifests import (
    Manifest,
    ParsedFiles,
    Source,
    SourceFile,
    collect_manifests,
    files_within_total,
    identity,
    load_manifests,
)
from bot.core.schemas import validate_schemas
from bot.git.sources import read_local_paths
from bot.schemas.catalog import FastPathValidator, KubernetesSchemaCatalog, catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.validate import (
    LocalPart,
    Validation,
    WorkerPart,
    split_files,
    validate_files,
    validate_parts,
    validate_within,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = KubernetesSchemaCatalog("1.33", fast=True)
REFERENCE = KubernetesSchemaCatalog("1.33", fast=False)


# --- strict comparison ------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True differ); NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# --- the schema fast path ---------------------------------------------------------


def with_bodies(manifests: list[Manifest], rng: random.Random) -> list[Manifest]:
    return [Manifest(m.key, m.api_version, broken(dict(m.body), rng), m.source) for m in manifests]


def findings_of(manifests: list[Manifest], catalog: KubernetesSchemaCatalog) -> list[Finding]:
    return list(validate_schemas(manifests, catalog))


def test_the_compiled_validator_is_in_use() -> None:
    assert isinstance(FAST.validator_for("apps/v1", "Deployment"), FastPathValidator)


def test_valid_corpus_gives_no_findings_either_way() -> None:
    manifests = corpus_manifests(600, seed=11)
    assert findings_of(manifests, FAST) == findings_of(manifests, REFERENCE) == []


def test_broken_objects_give_the_same_findings_and_messages() -> None:
    manifests = with_bodies(corpus_manifests(600, seed=12), random.Random(12))
    fast, reference = findings_of(manifests, FAST), findings_of(manifests, REFERENCE)
    assert len(reference) >= len(manifests) // 2  # the mistakes are really mistakes
    assert [f.describe() for f in fast] == [f.describe() for f in reference]
    assert fast == reference


def test_verdicts_agree_object_by_object() -> None:
    """The one way the fast path could differ: calling an object valid that is not."""
    rng = random.Random(13)
    manifests = corpus_manifests(400, seed=13)
    compared = 0
    for manifest in manifests + with_bodies(manifests, rng):
        fast = FAST.validator_for(manifest.api_version, manifest.key.kind)
        reference = REFERENCE.validator_for(manifest.api_version, manifest.key.kind)
        assert isinstance(fast, FastPathValidator) and reference is not None
        try:
            compiled_says_valid = fast.compiled.is_valid(manifest.body)
        except ValueError:  # not JSON (an integer key): the reference alone decides
            continue
        reference_says_valid = not list(reference.iter_errors(manifest.body))
        assert compiled_says_valid == reference_says_valid, manifest.key
        compared += 1
    assert compared > len(manifests) * 1.8  # nearly every object got both verdicts


def test_example_repository_checks_the_same() -> None:
    files = [
        SourceFile(str(p), p.read_bytes())
        for p in sorted(EXAMPLES.rglob("*"))
        if p.suffix in (".yaml", ".yml", ".json")
    ]
    manifests = list(load_manifests(files).manifests)
    assert manifests
    assert findings_of(manifests, FAST) == findings_of(manifests, REFERENCE)


# --- YAML: the generated corpus -------------------------------------------------


class ReferenceLoader(yaml.CSafeLoader):
    """PyYAML's own safe loader, keeping timestamps as strings like the bot's."""


ReferenceLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    yaml.CSafeLoader.construct_yaml_str,  # type: ignore[type-var]
)


def reference_documents(text: str) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=ReferenceLoader) if d is not None]


def our_documents(text: str) -> list[Any]:
    return [d.data for d in parse_documents(text)]


def test_generated_corpus_parses_as_pyyaml_parses_it() -> None:
    for manifest_file in generate(500, seed=14) + _with_anchors(generate(50, seed=15)):
        text = manifest_file.text()
        assert same(our_documents(text), reference_documents(text)), manifest_file.path


def _with_anchors(files: list[ManifestFile]) -> list[ManifestFile]:
    """The same objects dumped with anchors wherever a value is shared."""
    for manifest_file in files:
        for obj in manifest_file.objects:
            obj.setdefault("metadata", {})["annotations"] = obj["metadata"].get("labels")
    return [_AnchoredFile(f.path, f.objects) for f in files]


class _AnchoredFile(ManifestFile):
    def text(self) -> str:
        return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in self.objects)


# --- the parallel path ------------------------------------------------------------

# validate_files parses and checks runs of files in worker processes; the findings must
# be those of load_manifests + check_manifests over all files at once. The corpus puts
# what crosses files at both ends, so that the first and the last part share it: a
# CustomResourceDefinition first (its scope and schema decide objects in the last
# files), an object first that the last files declare again, and broken files and
# objects all along.

WIDGET_CRD = widget_crd(scope="Cluster")
SHARED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, namespace: team}
data: {a: b}
"""
WIDGETS = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: big, namespace: team}
spec: {size: large}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: small}
spec: {size: 1}
"""
ODD_FILES: dict[str, str | bytes] = {
    "zz/broken.yaml": "a: [1, 2\n",
    "zz/duplicate-key.yaml": "kind: ConfigMap\nkind: Secret\n",
    "zz/list.yaml": "apiVersion: v1\nkind: List\nitems:\n- 7\n- " + SHARED.replace("\n", "\n  "),
    "zz/no-name.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
    "zz/not-utf8.yaml": b"kind: \xff\n",
    "zz/shared-again.yaml": SHARED + "---\n" + SHARED,
    "zz/widgets.yaml": WIDGETS,
}


def mixed_corpus(count: int, seed: int) -> list[SourceFile]:
    """Generated files, about a third of their objects broken, and the files above."""
    rng = random.Random(seed)
    files = [
        SourceFile("aa/shared.yaml", SHARED.encode()),
        SourceFile("aa/widgets-crd.yaml", WIDGET_CRD.encode()),
    ]
    for manifest_file in generate(count, seed):
        objects = [
            rng.choice([broken, policy_breaking])(o, rng) if rng.random() < 0.3 else o
            for o in manifest_file.objects
        ]
        text = "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
        files.append(SourceFile(manifest_file.path, text.encode()))
    files += [
        SourceFile(path, t if isinstance(t, bytes) else t.encode()) for path, t in ODD_FILES.items()
    ]
    return files


POLICIES, _ = parse_policies(read_policy_dir(default_policy_dir()))
CATALOG = catalog_for("1.33")


def reference_validation(files: list[SourceFile], limits: Limits = DEFAULT_LIMITS) -> Validation:
    loaded = load_manifests(files, "default", limits)
    texts = {f.path: f.data for f in files}
    return Validation(len(loaded.manifests), check_manifests(loaded, CATALOG, POLICIES, texts))


@pytest.fixture(scope="module")
def corpus() -> list[SourceFile]:
    return mixed_corpus(400, seed=21)


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_parts_find_what_one_pass_finds(corpus: list[SourceFile], parts: int) -> None:
    reference = reference_validation(corpus)
    split = validate_files(corpus, "default", CATALOG, POLICIES, parts=parts)
    assert [f.describe() for f in split.findings] == [f.describe() for f in reference.findings]
    assert split == reference


def test_the_corpus_has_what_crosses_parts(corpus: list[SourceFile]) -> None:
    """Checked in each part alone, the corpus reports something else: the test can fail."""
    reference = reference_validation(corpus)
    rules = {f.rule for f in reference.findings}
    assert {"schema.invalid", "pinned-images", "manifest.duplicate-object"} <= rules
    assert {"yaml.syntax", "yaml.duplicate-key", "yaml.not-utf8", "manifest.not-object"} <= rules
    described = [f.describe() for f in reference.findings]
    assert sum("first at aa/shared.yaml:1" in d for d in described) == 3
    assert any(
        "zz/widgets.yaml" in d and "'large' is not of type 'integer'" in d for d in described
    )
    assert not any("Widget.example.com team/big" in d for d in described)  # cluster-scoped
    each_alone = [
        reference_validation(run) for run in split_files(sorted(corpus, key=lambda f: f.path), 2)
    ]
    naive = tuple(f for v in each_alone for f in v.findings)
    assert [f.describe() for f in naive] != described


names = st.sampled_from(["web", "db", "", None, 7, ["x"]])
metadata = st.one_of(
    st.sampled_from([None, "meta", ["x"]]),
    st.fixed_dictionaries(
        {},
        optional={
            "name": names,
            "namespace": st.sampled_from(["team", "", None, 3]),
            "generateName": st.just("x-"),
            "labels": st.just({"a": "b"}),
        },
    ),
)
crd_spec = st.fixed_dictionaries(
    {},
    optional={
        "scope": st.sampled_from(["Cluster", "Namespaced", None]),
        "names": st.sampled_from([{"kind": "Widget"}, {"kind": 5}, "Widget", {}]),
        "group": st.just("example.com"),
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "example.com/v1", "", None, 1]),
        "kind": st.sampled_from(
            ["ConfigMap", "Widget", "Namespace", "CustomResourceDefinition", "", 2]
        ),
        "metadata": metadata,
        "spec": crd_spec,
        "data": st.just({"k": "v"}),
    },
)


WHOLE_OBJECTS = [yaml.safe_load(WIDGET_CRD), *yaml.safe_load_all(WIDGETS), yaml.safe_load(SHARED)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(bodies | st.sampled_from(WHOLE_OBJECTS), max_size=12),
    st.sampled_from(["default", "team"]),
)
def test_identities_collect_as_whole_objects_do(
    objects: list[dict[str, Any]], namespace: str
) -> None:
    """What the parent process collects from the workers' identities is what it would
    collect from the whole objects: keys, duplicates, shape findings, CRD scopes."""
    whole = ParsedFiles(tuple((o, Source("f.yaml", i + 1)) for i, o in enumerate(objects)))
    ids = ParsedFiles(tuple((identity(o), source) for o, source in whole.objects))
    (by_whole, at_whole), (by_ids, at_ids) = (
        collect_manifests(whole, namespace),
        collect_manifests(ids, namespace),
    )
    assert at_ids == at_whole
    assert by_ids.findings == by_whole.findings
    assert [(m.key, m.api_version, m.source) for m in by_ids.manifests] == [
        (m.key, m.api_version, m.source) for m in by_whole.manifests
    ]


def test_files_past_the_total_limit_are_left_out_alike(corpus: list[SourceFile]) -> None:
    limits = Limits(max_total_bytes=sum(len(f.data) for f in corpus) * 2 // 3)
    reference = reference_validation(corpus, limits)
    assert "manifest.total-too-large" in {f.rule for f in reference.findings}
    split = validate_files(corpus, "default", CATALOG, POLICIES, parts=2, limits=limits)
    assert split == reference


def test_a_worker_that_dies_is_redone_here(corpus: list[SourceFile]) -> None:
    """Killed before it parsed, or after: this process parses and checks its part."""
    readable, left_out = files_within_total(corpus)
    texts = {f.path: f.data for f in corpus}
    for worker_class in (KilledAtOnce, KilledAfterParsing):
        first, second = (
            LocalPart(run, CATALOG, POLICIES, DEFAULT_LIMITS) for run in split_files(readable, 2)
        )
        worker = worker_class(second)
        try:
            split = validate_parts([first, worker], "default", left_out, texts)
        finally:
            worker.close()
        assert worker.killed
        assert split == reference_validation(corpus)


def test_the_forked_run_finds_the_same_and_leaves_no_process(
    corpus: list[SourceFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its part processes are not waited for (the findings go first), so the group kill
    after them must still stop every one: nothing of the child's group keeps running."""
    groups: list[int | None] = []
    kill_group = stages_validate._kill_group

    def recorded(pid: int | None) -> None:
        groups.append(pid)
        kill_group(pid)

    monkeypatch.setattr(stages_validate, "_kill_group", recorded)
    split = validate_within(600, corpus, "default", CATALOG, POLICIES, parts=2)
    assert split == reference_validation(corpus)
    assert len(groups) == 1 and groups[0] is not None
    assert group_ends(groups[0])


def group_ends(group: int) -> bool:
    """Whether every process of the group ends (a zombie has ended), polled a while:
    SIGKILL is delivered asynchronously."""
    for _ in range(500):
        if not any(_running_in(stat, group) for stat in Path("/proc").glob("[0-9]*/stat")):
            return True
        time.sleep(0.01)
    return False


def _running_in(stat: Path, group: int) -> bool:
    try:
        fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)"
    except OSError:
        return False  # ended while being listed
    state, process_group = fields[0], int(fields[2])
    return process_group == group and state != "Z"


class KilledAtOnce(WorkerPart):
    def __init__(self, part: LocalPart) -> None:
        super().__init__(part)
        self.killed = kill(self)


class KilledAfterParsing(WorkerPart):
    killed = False

    def parse(self) -> ParsedFiles:
        parsed = super().parse()
        self.killed = kill(self)
        return parsed


def kill(worker: WorkerPart) -> bool:
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    return True


def test_the_command_line_reports_what_one_pass_finds(
    tmp_path: Path, corpus: list[SourceFile]
) -> None:
    """Big enough for two processes where there are two cores; also unreadable files."""
    for source_file in corpus:
        target = tmp_path / source_file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source_file.data)
    (tmp_path / "zz" / "link.yaml").symlink_to(tmp_path / "aa" / "shared.yaml")
    (tmp_path / "zz" / "huge.yaml").write_bytes(b"#" * (DEFAULT_LIMITS.max_file_bytes + 1))
    files, refused = read_local_paths([tmp_path])
    assert len(refused) == 2
    expected = refused + reference_validation(list(files)).findings
    done = subprocess.run(
        [sys.executable, "-m", "bot", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f.describe() for f in expected]
