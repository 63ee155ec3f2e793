"""Check a Helm chart before helm runs: every dependency vendored or local, nothing to download."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from bot.core.documents import DocumentError, locate, parse_documents
from bot.core.findings import Finding
from bot.renderers.checkouts import TreeIndex
from bot.renderers.kustomizations import NETWORK_SETTING, Reader
from bot.renderers.protocol import render_error

MAX_CHARTS = 100
_CREDENTIALS = re.compile(r"//[^/@]*@")
_VERSION = re.compile(r"v?[0-9]+(\.[0-9]+)*([-+][0-9A-Za-z.+-]*)?")  # as Helm names archives


@dataclass(frozen=True)
class ChartPlan:
    """What to write out and prepare so that `helm template` needs nothing from the network."""

    folders: tuple[str, ...]  # the chart and every local (file://) dependency
    copies: tuple[tuple[str, str], ...]  # (folder in the checkout, repository folder), in order
    download: bool  # remote dependencies to fetch: only ever true when the network is allowed
    findings: tuple[Finding, ...]  # refusals: when there is one, helm must not run


async def plan_chart(index: TreeIndex, read: Reader, chart: str, allow_network: bool) -> ChartPlan:
    planner = _Planner(index, read, allow_network)
    await planner.run(chart)
    return ChartPlan(
        tuple(sorted(planner.folders)),
        tuple(planner.copies),
        planner.download,
        tuple(planner.findings),
    )


@dataclass
class _Planner:
    index: TreeIndex
    read: Reader
    allow_network: bool
    folders: set[str] = field(default_factory=set)
    copies: list[tuple[str, str]] = field(default_factory=list)
    download: bool = False
    findings: list[Finding] = field(default_factory=list)

    async def run(self, chart: str) -> None:
        # (where a chart is in the repository, where helm will see it, the charts above it)
        queue: list[tuple[str, str, tuple[str, ...]]] = [(chart, chart, ())]
        while queue:
            source, target, above = queue.pop(0)  # parents first: copies nest in their copies
            if len(self.copies) >= MAX_CHARTS:
                self._refuse(f"more than {MAX_CHARTS} local chart dependencies", chart)
                return
            self.folders.add(source)
            for name, dependency in await self._local_dependencies(source):
                if dependency in (*above, source):
                    self._refuse(f"dependency {name!r} of {source} depends on itself", source)
                    continue
                destination = _under(target, f"charts/{name}")
                self.copies.append((destination, dependency))
                queue.append((dependency, destination, (*above, source)))

    async def _local_dependencies(self, chart: str) -> list[tuple[str, str]]:
        """(name, repository folder) of each file:// dependency that is not vendored."""
        manifest = _under(chart, "Chart.yaml")
        if not self.index.is_file(manifest):
            self._refuse(f"{chart}/ holds no Chart.yaml (or it is a symbolic link)", chart)
            return []
        text = await self.read(manifest)
        try:
            docs = list(parse_documents(text))
        except DocumentError as exc:
            self._refuse(exc.message, manifest, exc.line)
            return []
        data = docs[0].data if len(docs) == 1 else None
        if not isinstance(data, dict):
            self._refuse("Chart.yaml must hold one YAML mapping", manifest)
            return []
        local = []
        for i, dependency in _dependencies(data):
            line = locate(text, docs[0].line, ("dependencies", i)) or docs[0].line
            found = self._dependency(chart, dependency, manifest, line)
            if found is not None:
                local.append((dependency["name"], found))
        return local

    def _dependency(
        self, chart: str, dependency: dict[str, Any], manifest: str, line: int
    ) -> str | None:
        name, repository = dependency["name"], str(dependency.get("repository") or "")
        if self._vendored(chart, name):
            return None
        if repository.startswith("file://"):
            folder = posixpath.normpath(posixpath.join(chart, repository.removeprefix("file://")))
            if folder == ".." or folder.startswith(("../", "/")):
                self._refuse(
                    f"dependency {name!r}: {repository!r} is outside the repository", manifest, line
                )
                return None
            return folder
        if not repository:
            self._refuse(f"dependency {name!r} is missing from {chart}/charts/", manifest, line)
        elif self.allow_network:
            self.download = True
        else:
            self._refuse(
                f"dependency {name!r} comes from {_CREDENTIALS.sub('//', repository)} and is "
                f"not vendored in {chart}/charts/; the bot renders without network access: "
                f"run `helm dependency build {chart}` and commit {chart}/charts/ (or ask the "
                f"bot's operator to set {NETWORK_SETTING})",
                manifest,
                line,
            )
        return None

    def _vendored(self, chart: str, name: str) -> bool:
        folder = _under(chart, "charts") + "/"
        if self.index.is_file(f"{folder}{name}/Chart.yaml"):
            return True
        return any(
            _is_archive_of(name, path.removeprefix(folder))
            for path in self.index.entries
            if path.startswith(folder)
        )

    def _refuse(self, message: str, path: str, line: int | None = None) -> None:
        self.findings.append(render_error("chart-refused", message, path, line))


def _is_archive_of(name: str, file: str) -> bool:
    """Whether `file` is `<name>-<version>.tgz`: chart "web" is not in "web-ui-1.0.0.tgz"."""
    prefix = name + "-"
    version = file[len(prefix) : -len(".tgz")]
    return file.startswith(prefix) and file.endswith(".tgz") and bool(_VERSION.fullmatch(version))


def _dependencies(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    items = data.get("dependencies")
    if not isinstance(items, list):
        return []
    return [
        (i, item)
        for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]


def _under(folder: str, path: str) -> str:
    return path if folder in ("", ".") else f"{folder}/{path}"
