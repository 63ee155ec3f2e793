#!/usr/bin/env bash
# Fetch what the GitHub tests check against, at pinned versions, into build/npm:
#   @octokit/openapi           GitHub's official REST API description (MIT licence)
#   @octokit/webhooks-examples real webhook payload examples (MIT licence)
# Nothing is vendored: the packages come from the npm registry, licence files included.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm install --silent --no-audit --no-fund --prefix build/npm \
  @octokit/openapi@23.0.2 @octokit/webhooks-examples@7.6.1 >&2
