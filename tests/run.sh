#!/usr/bin/env bash
# The whole test suite, as CI runs it (README "Tests"). Starts its own servers.
#   bash tests/run.sh
# Env: ASYA_SKIP_K8S=1 skips building/starting the loopback Kubernetes API server
# (the controller's tests then skip themselves and say so).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "[tests $(date +%H:%M:%S)] $*" >&2; }

# 1. servers: RabbitMQ, moto (SQS+S3), the Python venv
eval "$(bash tests/servers/up.sh)"

# 2. a real Kubernetes API server (built once, cached under ~/.cache)
if [ "${ASYA_SKIP_K8S:-0}" != 1 ]; then
  export K8S_RUN_DIR=${K8S_RUN_DIR:-$HOME/.cache/asya-k8s-run}
  # a server someone else started (another checkout's run) is used and left running
  started_here=1
  pid_file=$K8S_RUN_DIR/kube-apiserver.pid
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then started_here=0; fi
  bash tests/k8s/up.sh
  export ASYA_TEST_KUBECONFIG=$K8S_RUN_DIR/kubeconfig
  if [ "$started_here" = 1 ]; then trap 'bash tests/k8s/down.sh' EXIT; fi
fi

# 3. static checks
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The README's first command builds the render path alone; it broke once unnoticed.
log "cargo clippy (render-only build: asya-cli --no-default-features)"
cargo clippy -p asya-cli --no-default-features --locked -- -D warnings

# 4. Rust tests (unit, golden, integration against the servers above)
log "cargo nextest"
cargo nextest run --workspace --locked --no-fail-fast

# 4b. Helm charts with the real Helm engine (PyPI helm-sdkpy) on the API server above
bash tests/charts/run.sh

# 5. Python runtime tests
log "pytest runtime"
"$ASYA_TEST_PYTHON" -m pytest -q tests/runtime
# Again with concurrency 3 as every runtime's default: sync handlers then take the
# threaded path (each connection's thread calls them), which must behave the same.
log "pytest runtime, concurrency 3 (threaded sync handlers)"
ASYA_TEST_RUNTIME_CONCURRENCY=3 "$ASYA_TEST_PYTHON" -m pytest -q tests/runtime
