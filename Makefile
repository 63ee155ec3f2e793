# Entry points named in README.md. Everything installs into .venv; nothing global.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv

$(BIN)/gitops-bot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

venv: $(BIN)/gitops-bot

# The preview a pull request would get, on the bundled example (no GitHub, no cluster).
# It exits 1 on purpose: the example change carries a policy violation that blocks it.
demo: venv
	$(BIN)/python examples/build_demo_repo.py build/demo-repo
	$(BIN)/gitops-bot plan --repo build/demo-repo --base main --head update-shop --format markdown \
	  || echo "(exit code $$?: the plan blocks the merge, as the example intends)"

lint: venv
	$(BIN)/ruff check bot tests examples
	$(BIN)/ruff format --check bot tests examples
	$(BIN)/mypy --strict bot
	$(BIN)/lint-imports

# Real parts the tests need: kube-apiserver + etcd, kubectl, kustomize + helm, promtool and
# the sigs.k8s.io/yaml helper the YAML parity tests compare with (built once, cached),
# PostgreSQL, GitHub's REST description and webhook examples (npm, pinned; into build/npm),
# the SARIF 2.1.0 schema (npm, pinned; into build/npm-schemas), and Chromium from Debian's
# package for the status page tests (installed only when missing; apt-get needs root).
test: lint
	mkdir -p build
	[ -x /usr/bin/chromium ] || apt-get install -y --no-install-recommends chromium \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium)
	bash testenv/build.sh > build/testenv-bin.txt
	bash testenv/build.sh kubectl > build/kubectl-bin.txt
	bash testenv/postgres.sh > build/postgres-bin.txt
	bash testenv/build.sh tools > build/tools-bin.txt
	bash testenv/build.sh yamljson > build/yamljson-bin.txt
	bash testenv/build.sh promtool > build/promtool-bin.txt
	bash tests/openapi/install.sh
	bash tests/schemas/install.sh
	GITOPS_BOT_TESTENV_BIN="$$(tail -n 1 build/testenv-bin.txt)" \
	GITOPS_BOT_KUBECTL_BIN="$$(tail -n 1 build/kubectl-bin.txt)" \
	GITOPS_BOT_POSTGRES_BIN="$$(tail -n 1 build/postgres-bin.txt)" \
	GITOPS_BOT_TOOLS_BIN="$$(tail -n 1 build/tools-bin.txt)" \
	GITOPS_BOT_YAMLJSON_BIN="$$(tail -n 1 build/yamljson-bin.txt)" \
	GITOPS_BOT_PROMTOOL_BIN="$$(tail -n 1 build/promtool-bin.txt)" \
	  $(BIN)/pytest -q -p no:cacheprovider
