#!/usr/bin/env bash
# Fetch the published schemas the output-format tests check against, at pinned versions,
# into build/npm-schemas:
#   @microsoft/jest-sarif  ships the OASIS SARIF 2.1.0 JSON schema
#                          (lib/schemas/sarif-2.1.0-rtm.5.json; MIT licence)
# Nothing is vendored: the package comes from the npm registry, licence file included.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm install --silent --no-audit --no-fund --ignore-scripts --prefix build/npm-schemas \
  @microsoft/jest-sarif@1.0.0-beta.0 >&2
