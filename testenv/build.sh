#!/usr/bin/env bash
# Build the test-environment binaries from the Go modules pinned under testenv/
# (only the Go module proxy is contacted: no Docker, no release tarballs) into
# a per-version cache outside the repo, ${GITOPS_BOT_CACHE:-~/.cache/gitops-bot}:
#
#   controlplane (default)  testenv/go.mod        -> testenv/<k8s>-<etcd>/bin/
#                           kube-apiserver, etcd
#   kubectl                 testenv/go.mod        -> testenv/kubectl-<k8s>/bin/
#                           kubectl, the same version as the control plane (the tests set
#                           up scenarios with it and compare the bot with `kubectl diff`)
#   tools                   testenv/tools/go.mod  -> testenv/kustomize-<v>_helm-<v>_kubeconform-<v>/bin/
#                           kustomize, helm, kubeconform
#   yamljson                testenv/yamljson/go.mod -> testenv/yamljson-<v>_<source hash>/bin/
#                           yamljson (Kubernetes' YAML-to-JSON conversion, for parity tests)
#   promtool                testenv/promtool/go.mod -> testenv/promtool-<v>/bin/
#                           promtool (checks deploy/monitoring/ alert rules)
#   all                     all of them, one bin dir per line
#
# Cached binaries are reused when they run and report the pinned versions.
# Progress goes to stderr; the last line of stdout is the (last) bin directory.
#
# Usage: testenv/build.sh [controlplane|kubectl|tools|yamljson|promtool|all]
# Exit status: 0 ok, 3 no Go toolchain (and nothing cached), 1 other errors.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${GITOPS_BOT_CACHE:-${HOME:?HOME is not set}/.cache/gitops-bot}/testenv"
readonly EXIT_NO_GO=3  # tests/helpers/controlplane.py skips on this one
go=""

log() { printf 'testenv/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- go.mod helpers -------------------------------------------------------------

# Version of a module required in <dir>/go.mod.
mod_version() {
  awk -v mod="$2" '
    $1 == mod && $2 ~ /^v/ { print $2; exit }
    $1 == "require" && $2 == mod { print $3; exit }
  ' "$1/go.mod"
}

required() {
  local v
  v="$(mod_version "$1" "$2")"
  [[ -n "$v" ]] || die "$2 is not required in $1/go.mod"
  echo "$v"
}

go_directive() { awk '$1 == "go" { print $2; exit }' "$1/go.mod"; }

pinned_module() {  # pinned_module <dir>: a go.mod with its go.sum
  [[ -f "$1/go.mod" && -f "$1/go.sum" ]] || die "missing $1/go.mod or go.sum"
}

# Every k8s.io staging replace must point at v0.Y.Z for kubernetes v1.Y.Z.
check_staging_pins() {
  local want="v0.${k8s_version#v1.}" bad
  bad="$(awk -v want="$want" '$2 == "=>" && $1 ~ /^k8s\.io\// && $4 != want { print $1 " " $4 }' "$here/go.mod")"
  [[ -z "$bad" ]] || die "go.mod: k8s.io replaces must all be $want for k8s.io/kubernetes $k8s_version; wrong: $(echo $bad)"
}

# --- go toolchain -----------------------------------------------------------------

find_go() {
  if [[ -n "${GO:-}" ]]; then
    command -v "$GO" || die "GO=$GO is not an executable"
  elif command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  else
    log "error: Go toolchain not found (tried \$GO, PATH, /usr/local/go/bin/go); install Go >= $(go_directive "$here")"
    exit "$EXIT_NO_GO"
  fi
}

# Sets $go; checks it is new enough for <moddir>/go.mod (GOTOOLCHAIN=local).
setup_go() {
  local have need
  [[ -n "$go" ]] || go="$(find_go)" || exit
  have="$("$go" env GOVERSION)"; have="${have#go}"
  need="$(go_directive "$1")"
  if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]]; then
    die "$go is Go $have but $1/go.mod needs Go >= $need"
  fi
}

go_in() {  # go_in <moddir> <go args...>: pinned module graph, never edits go.mod/go.sum
  local dir="$1"; shift
  (cd "$dir" && GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" "$go" "$@")
}

go_build() {  # go_build <moddir> <out> <package> <ldflags>
  log "building $3 -> $2"
  go_in "$1" build -trimpath -ldflags "-s -w $4" -o "$2" "$3" \
    || die "go build $3 failed (see the compiler output above)"
}

# Publication time of a module version (reproducible build dates), or empty.
mod_time() {
  go_in "$1" list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$2" 2>/dev/null || true
}

# --- cache ------------------------------------------------------------------------

# cached <key> <check_fn> <build_fn>: print $cache_root/<key>/bin, building it
# with <build_fn> <bin_dir> unless <check_fn> <bin_dir> accepts the cached one.
cached() {
  local key="$1" check="$2" build="$3" dest tmp lock_fd start=$SECONDS
  dest="$cache_root/$key"
  if "$check" "$dest/bin"; then
    log "reusing $dest/bin"
    echo "$dest/bin"
    return
  fi
  mkdir -p "$cache_root" || die "cannot create cache dir $cache_root"
  # One build per key at a time (e.g. `make test` and a pytest run started together).
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$cache_root/.$key.lock"
    flock -n "$lock_fd" || { log "waiting for another build of $key"; flock "$lock_fd"; }
    if "$check" "$dest/bin"; then
      log "reusing $dest/bin (built meanwhile)"
      echo "$dest/bin"
      return
    fi
  fi
  [[ ! -e "$dest" ]] || { log "removing unusable $dest"; rm -rf "$dest"; }
  tmp="$(mktemp -d "$cache_root/.$key.XXXXXX")" && chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  "$build" "$tmp/bin"
  "$check" "$tmp/bin" || die "binaries built in $tmp/bin do not report the pinned versions"
  if ! mv -T "$tmp" "$dest" 2>/dev/null; then
    "$check" "$dest/bin" || die "cannot move $tmp to $dest"
    log "another build finished first; using it"
    rm -rf "$tmp"
  fi
  trap - EXIT
  log "built $dest/bin in $((SECONDS - start))s"
  echo "$dest/bin"
}

# --- control plane: kube-apiserver + etcd (testenv/go.mod) -------------------------

k8s_ldflags() {
  local v="$k8s_version" minor date p
  minor="${v#v1.}"; minor="${minor%%.*}"
  date="$(mod_time "$here" k8s.io/kubernetes)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=archive ' \
      "$p" "$v" "$p" "$p" "$minor" "$p"
    [[ -z "$date" ]] || printf -- '-X %s.buildDate=%s ' "$p" "$date"
  done
}

controlplane_ok() {
  local out
  [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]] || return 1
  out="$("$1/kube-apiserver" --version 2>&1)" && [[ "$out" == "Kubernetes $k8s_version" ]] || return 1
  out="$("$1/etcd" --version 2>&1)" && grep -qx "etcd Version: ${etcd_version#v}" <<<"$out"
}

controlplane_build() {
  setup_go "$here"
  # One after the other: kube-apiserver alone needs several GB and both cores.
  go_build "$here" "$1/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$(k8s_ldflags)"
  go_build "$here" "$1/etcd" go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-$etcd_version"
}

controlplane() {
  k8s_version="$(required "$here" k8s.io/kubernetes)"
  etcd_version="$(required "$here" go.etcd.io/etcd/server/v3)"
  check_staging_pins
  cached "$k8s_version-$etcd_version" controlplane_ok controlplane_build
}

# --- kubectl (testenv/go.mod): its own cache key, so a cached control plane stays valid --

kubectl_ok() {
  local out
  [[ -x "$1/kubectl" ]] || return 1
  out="$("$1/kubectl" version --client 2>&1)" && grep -qx "Client Version: $k8s_version" <<<"$out"
}

kubectl_build() {
  setup_go "$here"
  go_build "$here" "$1/kubectl" k8s.io/kubernetes/cmd/kubectl "$(k8s_ldflags)"
}

kubectl() {
  k8s_version="$(required "$here" k8s.io/kubernetes)"
  check_staging_pins
  cached "kubectl-$k8s_version" kubectl_ok kubectl_build
}

# --- tools: kustomize, helm, kubeconform (testenv/tools/go.mod) --------------------

tools_ok() {
  local out
  for out in kustomize helm kubeconform; do [[ -x "$1/$out" ]] || return 1; done
  out="$("$1/kustomize" version 2>&1)" && [[ "$out" == "$kustomize_version" ]] || return 1
  out="$("$1/helm" version --short 2>&1)" && [[ "$out" == "$helm_version" ]] || return 1
  out="$("$1/kubeconform" -v 2>&1)" && [[ "$out" == "$kubeconform_version" ]]
}

tools_build() {
  local dir="$here/tools"
  setup_go "$dir"
  local provenance=sigs.k8s.io/kustomize/api/provenance
  go_build "$dir" "$1/kustomize" sigs.k8s.io/kustomize/kustomize/v5 \
    "-X $provenance.version=$kustomize_version -X $provenance.buildDate=$(mod_time "$dir" sigs.k8s.io/kustomize/kustomize/v5)"
  go_build "$dir" "$1/helm" helm.sh/helm/v4/cmd/helm \
    "-X helm.sh/helm/v4/internal/version.version=$helm_version -X helm.sh/helm/v4/internal/version.metadata="
  go_build "$dir" "$1/kubeconform" github.com/yannh/kubeconform/cmd/kubeconform \
    "-X main.version=$kubeconform_version"
}

tools() {
  local dir="$here/tools"
  pinned_module "$dir"
  kustomize_version="$(required "$dir" sigs.k8s.io/kustomize/kustomize/v5)"
  helm_version="$(required "$dir" helm.sh/helm/v4)"
  kubeconform_version="$(required "$dir" github.com/yannh/kubeconform)"
  cached "kustomize-${kustomize_version}_helm-${helm_version}_kubeconform-${kubeconform_version}" \
    tools_ok tools_build
}

# --- yamljson: sigs.k8s.io/yaml as a command (testenv/yamljson/go.mod) --------------

yamljson_ok() {
  local out
  [[ -x "$1/yamljson" ]] || return 1
  out="$("$1/yamljson" -version 2>&1)" || return 1
  [[ "$out" == "sigs.k8s.io/yaml $sigs_yaml_version"$'\n'"go.yaml.in/yaml/v2 $goyaml_version" ]]
}

yamljson_build() {
  local dir="$here/yamljson"
  setup_go "$dir"
  go_build "$dir" "$1/yamljson" . ""
}

yamljson() {
  local dir="$here/yamljson" digest
  [[ -f "$dir/go.mod" && -f "$dir/go.sum" ]] || die "missing $dir/go.mod or go.sum"
  sigs_yaml_version="$(required "$dir" sigs.k8s.io/yaml)"
  goyaml_version="$(required "$dir" go.yaml.in/yaml/v2)"
  # The command is this repository's own source: a change to it is a new cache entry.
  digest="$(cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go | sha256sum | cut -c1-12)"
  cached "yamljson-${sigs_yaml_version}_${digest}" yamljson_ok yamljson_build
}

# --- promtool (testenv/promtool/go.mod) --------------------------------------------

# Prometheus tags v3.Y.Z as Go module version v0.3YY.Z.
prometheus_release() {
  local minor="${1#v0.3}"
  echo "3.$((10#${minor%%.*})).${1##*.}"
}

promtool_ok() {
  local out
  [[ -x "$1/promtool" ]] || return 1
  out="$("$1/promtool" --version 2>&1)" && grep -q "^promtool, version $promtool_release " <<<"$out"
}

promtool_build() {
  local dir="$here/promtool" v=github.com/prometheus/common/version
  setup_go "$dir"
  go_build "$dir" "$1/promtool" github.com/prometheus/prometheus/cmd/promtool \
    "-X $v.Version=$promtool_release -X $v.Branch=module -X $v.Revision=$promtool_version"
}

promtool() {
  local dir="$here/promtool"
  pinned_module "$dir"
  promtool_version="$(required "$dir" github.com/prometheus/prometheus)"
  promtool_release="$(prometheus_release "$promtool_version")"
  cached "promtool-$promtool_version" promtool_ok promtool_build
}

main() {
  pinned_module "$here"
  case "${1:-controlplane}" in
    controlplane) controlplane ;;
    kubectl) kubectl ;;
    tools) tools ;;
    yamljson) yamljson ;;
    promtool) promtool ;;
    all) controlplane; kubectl; tools; yamljson; promtool ;;
    -h|--help) sed -n '2,23s/^# \{0,1\}//p' "$0" ;;
    *) die "unknown mode '$1' (expected: controlplane, kubectl, tools, yamljson, promtool or all)" ;;
  esac
}

main "$@"
