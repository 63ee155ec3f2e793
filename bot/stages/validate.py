"""Check local files as one environment, sharing parsing and checks among the cores."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.checks import (
    ObjectFindings,
    check_objects,
    checked_manifests,
    report_findings,
    report_relaxations,
)
from bot.core.customschemas import NO_SCHEMAS, FirstFound, SchemaLookup, crd_schemas
from bot.core.documents import DEFAULT_LIMITS, Limits
from bot.core.findings import Finding
from bot.core.manifests import (
    Manifest,
    ObjectKey,
    ParsedFiles,
    SourceFile,
    collect_manifests,
    files_within_total,
    identity,
    load_manifests,
    manifest_at,
    parse_files,
)
from bot.core.policies import Policy
from bot.core.relaxations import ExemptionRules, Relaxation
from bot.core.schemas import UNKNOWN_WARNS, SchemaCatalog, UnknownKinds
from bot.gcpause import cyclic_gc_paused
from bot.stages.checklimits import ChecksTimedOut

# Below this much YAML per part, starting a process costs more than it saves.
MIN_PART_BYTES = 128 * 1024

CrdSchemas = SchemaLookup
Kept = Sequence[tuple[int, Manifest]]  # position in a part's objects, and the manifest


@dataclass(frozen=True)
class Validation:
    objects: int  # objects checked
    findings: tuple[Finding, ...]
    relaxations: tuple[Relaxation, ...] = ()  # objects exempted from policies


def validate_files(
    files: Sequence[SourceFile],
    default_namespace: str,
    catalog: SchemaCatalog,
    policies: Sequence[Policy],
    parts: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    schemas: SchemaLookup = NO_SCHEMAS,
    unknown: UnknownKinds = UNKNOWN_WARNS,
    exemptions: ExemptionRules | None = None,
    reaped_by_caller: bool = False,
) -> Validation:
    """What load_manifests and check_manifests find, in `parts` processes if worth it.

    The files are split into runs of whole files, in path order. Each process parses
    its run; this one collects every object's identity (so keys, duplicates and the
    scopes and schemas of CRDs are decided over all files, as load_manifests does),
    then each process checks its own objects and this one puts the findings in order.
    `schemas` are the custom resource schemas from elsewhere than these files. With
    `reaped_by_caller` the caller kills this process and its group once it has the
    findings (validate_within), so the workers are not waited for: that would only delay
    the findings.
    """
    texts = {f.path: f.data for f in files}
    count = parts if parts is not None else part_count(files)
    # Checks and the messages between processes make garbage but no cycles of note,
    # while the parsed objects fill the heap that every collection would walk again.
    with cyclic_gc_paused():
        if count <= 1:
            loaded = load_manifests(files, default_namespace, limits)
            checked = checked_manifests(
                loaded, catalog, policies, texts, unknown, schemas, exemptions=exemptions
            )
            return Validation(len(loaded.manifests), checked.findings, checked.relaxations)
        readable, left_out = files_within_total(files, limits)
        runs = [
            LocalPart(run, catalog, policies, limits, unknown, exemptions)
            for run in split_files(readable, count)
        ]
        workers = (WorkerPart(r, wait_on_close=not reaped_by_caller) for r in runs[1:])
        started: list[LocalPart | WorkerPart] = [runs[0], *workers]
        try:
            return validate_parts(started, default_namespace, left_out, texts, schemas)
        finally:
            for part in started:
                part.close()


def validate_within(seconds: float, *args: Any, **kwargs: Any) -> Validation:
    """validate_files(*args, **kwargs) in a forked child, killed after `seconds`
    (ChecksTimedOut) with the processes of its parts.

    A signal handler could not stop it: compiled checks hold the interpreter in native
    code. The child inherits everything by the fork (nothing is pickled on the way in);
    only its findings come back. It still splits the work into one part per core.
    """
    if not _can_fork():
        return validate_files(*args, **kwargs)
    import multiprocessing  # only here: the import costs every command start-up time

    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_validate_into, args=(theirs, args, kwargs))
    child.start()
    with contextlib.suppress(OSError):  # also here: no race with the child's own call
        os.setpgid(child.pid or 0, child.pid or 0)
    theirs.close()
    try:
        if not ours.poll(seconds):
            raise ChecksTimedOut(seconds)
        validation: Validation = ours.recv()
    except EOFError:  # the child died: do the work here, so its error surfaces as usual
        return validate_files(*args, **kwargs)
    finally:
        _kill_group(child.pid)
        child.join()
    return validation


def _validate_into(connection: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    os.setpgid(0, 0)  # its part processes join its group, so one kill stops them all
    # Paused until the findings are sent: collecting the parsed objects' heap when the
    # parts' pause ends would only delay them, as this process is killed once they arrive.
    with connection, cyclic_gc_paused():
        connection.send(validate_files(*args, **{**kwargs, "reaped_by_caller": True}))


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # in case it had not yet made its own group


def _can_fork() -> bool:
    # forking a process that runs threads could copy a lock while it is held
    return hasattr(os, "fork") and threading.active_count() == 1


def part_count(files: Sequence[SourceFile]) -> int:
    """How many processes to use: one per core, while each gets enough to parse."""
    if not _can_fork():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, sum(len(f.data) for f in files) // MIN_PART_BYTES))


def split_files(files: Sequence[SourceFile], count: int) -> list[list[SourceFile]]:
    """`count` runs of consecutive files with about the same number of bytes each."""
    total = sum(len(f.data) for f in files)
    runs: list[list[SourceFile]] = [[] for _ in range(count)]
    done = 0
    for source_file in files:
        runs[min(count - 1, done * count // max(total, 1))].append(source_file)
        done += len(source_file.data)
    return [run for run in runs if run] or [[]]


def validate_parts(
    parts: Sequence[LocalPart | WorkerPart],
    default_namespace: str,
    left_out: Iterable[Finding],
    texts: Mapping[str, bytes],
    schemas: SchemaLookup = NO_SCHEMAS,
) -> Validation:
    """Parse in every part, collect all objects here, check in every part, report here."""
    parsed = [part.parse() for part in parts]  # the workers parse at the same time
    objects = tuple(o for p in parsed for o in p.objects)
    findings = tuple(f for p in parsed for f in p.findings)
    loaded, positions = collect_manifests(
        ParsedFiles(objects, findings), default_namespace, left_out
    )
    crds = FirstFound((crd_schemas(loaded.manifests), schemas))
    kept = _kept_per_part(positions, loaded.manifests, [len(p.objects) for p in parsed])
    for part, part_kept in zip(parts, kept, strict=True):
        part.start_check(part_kept, crds)
    checked = [part.check(part_kept, crds) for part, part_kept in zip(parts, kept, strict=True)]
    findings = report_findings(loaded.findings, checked, texts)
    return Validation(len(loaded.manifests), findings, report_relaxations(checked, texts))


def _kept_per_part(
    positions: Sequence[int], manifests: Sequence[Manifest], sizes: Sequence[int]
) -> list[list[tuple[int, Manifest]]]:
    """The kept objects of each part: position within the part, and manifest."""
    kept: list[list[tuple[int, Manifest]]] = [[] for _ in sizes]
    part, start = 0, 0
    for position, manifest in zip(positions, manifests, strict=True):
        while position >= start + sizes[part]:
            start += sizes[part]
            part += 1
        kept[part].append((position - start, manifest))
    return kept


class LocalPart:
    """Some of the files, parsed and checked in this process."""

    def __init__(
        self,
        files: Sequence[SourceFile],
        catalog: SchemaCatalog,
        policies: Sequence[Policy],
        limits: Limits,
        unknown: UnknownKinds = UNKNOWN_WARNS,
        exemptions: ExemptionRules | None = None,
    ) -> None:
        self.files, self.catalog, self.policies, self.limits = files, catalog, policies, limits
        self.unknown, self.exemptions = unknown, exemptions
        self._parsed: ParsedFiles | None = None

    def parse(self) -> ParsedFiles:
        with cyclic_gc_paused():
            self._parsed = parse_files(self.files, self.limits)
        return self._parsed

    def start_check(self, kept: Kept, crds: CrdSchemas) -> None:
        pass  # checked when asked

    def check(self, kept: Kept, crds: CrdSchemas) -> ObjectFindings:
        """Collected from whole objects parsed here, the manifests are ready to check."""
        return self._check([m for _, m in kept], crds)

    def check_keyed(
        self, kept: Sequence[tuple[int, ObjectKey]], crds: CrdSchemas
    ) -> ObjectFindings:
        """Check objects of this part by position, under keys decided elsewhere."""
        objects = (self._parsed or self.parse()).objects
        manifests = [manifest_at(key, *objects[position]) for position, key in kept]
        return self._check(manifests, crds)

    def _check(self, manifests: Sequence[Manifest], crds: CrdSchemas) -> ObjectFindings:
        return check_objects(
            manifests, self.catalog, self.policies, crds, self.unknown, self.exemptions
        )

    def close(self) -> None:
        pass


class WorkerPart:
    """A LocalPart in a forked process; only identities and findings come back.

    Should the process fail in any way, this one does the part itself, so that an error
    surfaces here exactly as it would without workers.
    """

    def __init__(self, part: LocalPart, wait_on_close: bool = True) -> None:
        import multiprocessing  # only here: the import costs every command start-up time

        context = multiprocessing.get_context("fork")
        self.part = part
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(part, theirs), daemon=True)
        self._process.start()
        theirs.close()
        self._failed = False
        self._wait_on_close = wait_on_close

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def parse(self) -> ParsedFiles:
        parsed = self._receive()
        return parsed if isinstance(parsed, ParsedFiles) else self.part.parse()

    def start_check(self, kept: Kept, crds: CrdSchemas) -> None:
        if not self._failed:
            try:
                self._connection.send((_keys(kept), crds))
            except OSError:
                self._failed = True

    def check(self, kept: Kept, crds: CrdSchemas) -> ObjectFindings:
        checked = self._receive()
        if isinstance(checked, ObjectFindings):
            return checked
        return self.part.check_keyed(_keys(kept), crds)

    def close(self) -> None:
        self._connection.close()
        if not self._wait_on_close:
            return  # its process group is killed by whoever asked for that
        self._process.join(timeout=0.1)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def _receive(self) -> object:
        if self._failed:
            return None
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            self._failed = True
            return None


def _keys(kept: Kept) -> list[tuple[int, ObjectKey]]:
    return [(position, manifest.key) for position, manifest in kept]


def _serve(part: LocalPart, connection: Any) -> None:
    """In the worker: parse, send identities, check the kept objects, send findings."""
    # On any failure the connection closes; the parent redoes the part and reports it.
    with connection, contextlib.suppress(BaseException):
        parsed = part.parse()
        objects = tuple((identity(body), source) for body, source in parsed.objects)
        connection.send(ParsedFiles(objects, parsed.findings))
        kept, crds = connection.recv()
        connection.send(part.check_keyed(kept, crds))
