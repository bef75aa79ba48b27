#!/usr/bin/env bash
# Chart tests (tests/run.sh step): charts/asya and charts/asya-crew installed with
# Helm's own engine (PyPI helm-sdkpy) into the API server of $ASYA_TEST_KUBECONFIG.
# Sets up on a fresh machine: Python 3.12 from pyenv, the venv .venv-helm, kubectl.
#   bash tests/charts/run.sh [pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
log() { echo "[charts $(date +%H:%M:%S)] $*" >&2; }

# helm-sdkpy needs Python >= 3.12
PY=${ASYA_CHARTS_PYTHON:-}
if [ -z "$PY" ]; then
  for v in "$HOME"/.pyenv/versions/3.1[2-9]*; do [ -x "$v/bin/python" ] && PY=$v/bin/python && break; done
fi
if [ -z "$PY" ] && command -v pyenv >/dev/null; then
  log "pyenv install 3.12"
  pyenv install -s 3.12 && PY=$(pyenv root)/versions/$(pyenv versions --bare | grep '^3\.12' | tail -1)/bin/python
fi
[ -n "$PY" ] || { echo "tests/charts: no Python >= 3.12 (pyenv) found" >&2; exit 1; }

VENV=$ROOT/.venv-helm
if ! "$VENV/bin/python" -c 'import helm_sdkpy, pytest, yaml' 2>/dev/null; then
  log "venv $VENV ($("$PY" --version))"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/charts/requirements.txt
fi

if ! command -v kubectl >/dev/null; then
  log "apt-get install kubectl"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends kubectl >/dev/null
fi

# the tests render with the real `asya` (cargo's incremental build: quick when built)
# the same features as the nextest build before it (building one package would unify
# features differently and rebuild half the workspace): already fresh in tests/run.sh
cargo build -q --workspace --all-targets --locked
export ASYA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/asya

log "pytest tests/charts"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/charts "$@"
