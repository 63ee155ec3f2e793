# gitops-bot: the webhook server (`gitops-bot serve`) with git, kustomize and helm.
#
#   docker build -t gitops-bot .
#   docker run --rm -p 8080:8080 --env-file gitops-bot.env -v gitops-bot:/var/lib/gitops-bot gitops-bot
#
# Stop it with `docker stop --time 30` (the server's GITOPS_BOT_SHUTDOWN_GRACE_SECONDS):
# it finishes or releases its jobs on SIGTERM. docs/operations.md covers the rest.

# --- kustomize and helm, built from the Go module proxy at the versions the tests use ----
# testenv/tools/go.mod pins them; testenv/build.sh builds them with -mod=readonly (go.sum
# is checked) and refuses binaries that do not report the pinned versions.
FROM golang:1.26.8 AS tools
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY testenv/build.sh testenv/go.mod testenv/go.sum testenv/
COPY testenv/tools/ testenv/tools/
RUN bin="$(GITOPS_BOT_CACHE=/tmp/cache bash testenv/build.sh tools | tail -n 1)" \
 && install -D -m 0755 "$bin/kustomize" /out/kustomize \
 && install -D -m 0755 "$bin/helm" /out/helm

# --- the wheel, installed with its runtime dependencies (no dev extras) into a venv -------
FROM python:3.11.14-slim-bookworm AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY policies/ policies/
RUN pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/gitops-bot \
 && /opt/gitops-bot/bin/pip install /dist/gitops_bot-*.whl

# --- runtime: Python, git, the two tools, the venv; nothing to build anything with --------
FROM python:3.11.14-slim-bookworm
# tini is PID 1: it passes SIGTERM on and reaps the git, kustomize and helm processes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gitops-bot \
 && useradd --system --uid 10001 --gid gitops-bot --home-dir /var/lib/gitops-bot \
      --shell /usr/sbin/nologin gitops-bot \
 && install -d -o gitops-bot -g gitops-bot -m 0750 /var/lib/gitops-bot
COPY --from=tools /out/kustomize /out/helm /usr/local/bin/
COPY --from=wheel /opt/gitops-bot /opt/gitops-bot
# The store and git mirrors live under /var/lib/gitops-bot: mount a volume there, or
# point GITOPS_BOT_DATABASE_URL at PostgreSQL.
ENV PATH=/opt/gitops-bot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/gitops-bot \
    GITOPS_BOT_HOST=0.0.0.0 \
    GITOPS_BOT_PORT=8080 \
    GITOPS_BOT_DATA_DIR=/var/lib/gitops-bot/data \
    GITOPS_BOT_DATABASE_URL=sqlite:////var/lib/gitops-bot/gitops-bot.sqlite3
WORKDIR /var/lib/gitops-bot
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['GITOPS_BOT_PORT'] + '/healthz', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "gitops-bot"]
CMD ["serve"]
