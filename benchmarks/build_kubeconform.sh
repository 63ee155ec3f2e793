#!/usr/bin/env bash
# Build kubeconform, the tool benchmark 2 compares `gitops-bot validate` with, from the
# Go module proxy (no release tarball, no Docker) into a per-version cache outside the
# repository: ${GITOPS_BOT_CACHE:-~/.cache/gitops-bot}/bench/kubeconform-<version>/bin/.
# A cached binary is reused when it runs and reports the pinned version.
# Progress goes to stderr; the last line of stdout is the binary's path.
#
# Usage: benchmarks/build_kubeconform.sh            (KUBECONFORM_VERSION overrides the pin)
set -euo pipefail

version="${KUBECONFORM_VERSION:-v0.8.0}"  # same pin as testenv/tools/go.mod
cache="${GITOPS_BOT_CACHE:-${HOME:?HOME is not set}/.cache/gitops-bot}/bench"
dest="$cache/kubeconform-$version"
binary="$dest/bin/kubeconform"

log() { printf 'build_kubeconform.sh: %s\n' "$*" >&2; }

if [[ -x "$binary" && "$("$binary" -v 2>&1)" == "$version" ]]; then
  log "reusing $binary"
  echo "$binary"
  exit 0
fi

go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x "$go" ]] || { log "error: no Go toolchain (set GO=/path/to/go)"; exit 3; }

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.kubeconform-$version.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building github.com/yannh/kubeconform/cmd/kubeconform@$version with $("$go" env GOVERSION)"
# `go install pkg@version` builds with the module's own go.mod and go.sum, checked
# against the checksum database; nothing in this repository's Go setup is involved.
(cd "$tmp" && GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  GOBIN="$tmp/bin" "$go" install -trimpath -ldflags "-s -w -X main.version=$version" \
  "github.com/yannh/kubeconform/cmd/kubeconform@$version")
[[ "$("$tmp/bin/kubeconform" -v 2>&1)" == "$version" ]] || { log "error: built binary does not report $version"; exit 1; }
rm -rf "$dest"
mv -T "$tmp" "$dest"
trap - EXIT
log "built $binary"
echo "$binary"
