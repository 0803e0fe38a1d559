#!/usr/bin/env bash
# Creates the project's virtualenv with everything the demo and the tests need:
# the package (editable), Airflow 3 (newest), the Kubernetes provider, Metaflow, the object-store
# clients and servers, the test tools, and PostgreSQL and Redis (Debian packages, through
# apt-get). Needs only python3, node/npm, apt-get and the package registries.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
uv=$(command -v uv || echo "python3 -m uv")

[ -x "$venv/bin/python" ] || $uv venv --quiet --python python3 "$venv"
# --compile-bytecode: uv installs no .pyc files, and where PYTHONDONTWRITEBYTECODE is set (as on
# this project's machines) every Airflow process would compile Airflow from source again: 5 s
# instead of 2 s for `import airflow` here, in every parse, task and test subprocess.
$uv pip install --quiet --compile-bytecode --python "$venv/bin/python" \
  -e ".[publish,airflow,s3,azure,gcs,test]" \
  "apache-airflow>=3.3,<4" \
  "apache-airflow-providers-cncf-kubernetes>=10.4,<11"

# PostgreSQL and Redis from Debian's packages, for the production topology (tests/topology,
# `make airflow`): the metadata database and the Celery broker. Only what is missing, quietly.
missing=""
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Azure Blob's emulator for the tests (azurite 3.36+ needs node >= 21), in a project folder.
azurite_version=3.35.0
tools=.tools/node
if [ "$(node -p "require('./$tools/node_modules/azurite/package.json').version" 2>/dev/null)" != "$azurite_version" ]; then
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "azurite@$azurite_version" >/dev/null
fi
echo "installed into $venv: $("$venv/bin/python" -c 'import airflow, metaflow; print("airflow", airflow.__version__, "metaflow", metaflow.__version__)' 2>/dev/null | tail -1), azurite $azurite_version in $tools, $(redis-server --version | cut -d' ' -f1-3), PostgreSQL $(ls /usr/lib/postgresql | sort -n | tail -1)"
