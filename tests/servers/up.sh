#!/usr/bin/env bash
# Starts every server the test suite needs, idempotently:
#   - RabbitMQ on 127.0.0.1:5672 (guest/guest): installed from Debian if missing,
#     started if down, left alone if already running;
#   - moto server (SQS + S3 emulator, from PyPI) on 127.0.0.1:${ASYA_MOTO_PORT:-5055},
#     installed into the project-local virtualenv .venv, started in the background;
#   - PostgreSQL on 127.0.0.1:5432 (the gateway's task store): installed from Debian if
#     missing, its cluster started if down; the tests connect as `postgres` over TCP (trust
#     auth on this machine kind) and create a database per test.
# Also creates .venv with pytest for the runtime's tests.
# Prints `export` lines for the tests' environment; `source <(tests/servers/up.sh)` works.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN="$ROOT/tests/servers/.run"
mkdir -p "$RUN"
log() { echo "[servers $(date +%H:%M:%S)] $*" >&2; }
MOTO_PORT=${ASYA_MOTO_PORT:-5055}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds
  for _ in $(seq 1 $(( $2 * 4 ))); do port_open "$1" && return 0; sleep 0.25; done
  return 1
}

# ---------------------------------------------------------------- RabbitMQ
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing rabbitmq-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi
# On start RabbitMQ recovers every durable queue with one file handle each. With Debian's
# default of 1024 open files (927 usable) and more queues than that left by earlier test
# runs, the broker-restart test's start_app hung in recovery and every later RabbitMQ test
# failed. So the broker runs with the hard limit (at most 65536), restarted once if not.
NOFILE=$(ulimit -Hn); { [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ]; } && NOFILE=65536
start_rabbitmq() {
  if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && id rabbitmq >/dev/null 2>&1; then
    # Debian's wrapper does `su rabbitmq`, which resets the limit: set it after su
    (cd /var/lib/rabbitmq && su rabbitmq -s /bin/sh -c \
      "ulimit -n $NOFILE; exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached") >/dev/null 2>&1 || true
  else
    (ulimit -n "$NOFILE"; rabbitmq-server -detached) >/dev/null 2>&1 || true
  fi
}
beam_nofile() { # soft open-files limit of the running broker, empty if none runs
  local pid; pid=$(pgrep -f beam.smp | head -1) || true
  [ -n "$pid" ] && awk '/^Max open files/{print $4}' "/proc/$pid/limits" 2>/dev/null
}
if ! port_open 5672 && [ -z "$(beam_nofile)" ]; then
  log "starting RabbitMQ (open files $NOFILE)"
  start_rabbitmq
  wait_port 5672 90 || { log "RabbitMQ did not open 5672"; exit 1; }
fi
current=$(beam_nofile)
if [ -n "$current" ] && [ "$current" -lt 10000 ] && [ "$NOFILE" -ge 10000 ]; then
  log "restarting RabbitMQ: open files $current -> $NOFILE"
  timeout 60 rabbitmqctl -q stop >/dev/null 2>&1 || pkill -9 -f beam.smp || true
  for _ in $(seq 1 40); do pgrep -f beam.smp >/dev/null || break; sleep 0.25; done
  pkill -9 -f beam.smp 2>/dev/null || true
  start_rabbitmq
  wait_port 5672 90 || { log "RabbitMQ did not open 5672 after the restart"; exit 1; }
fi
# the app may be stopped (a fault-injection test that died half way): start it
timeout 120 rabbitmqctl -q start_app >/dev/null 2>&1 || true
wait_port 5672 60 || { log "RabbitMQ not listening"; exit 1; }
log "RabbitMQ ready on 127.0.0.1:5672"
# Tests never delete their queues (a killed test could not anyway), so every run left about
# 150 behind. A policy lets the broker drop a queue of a generated test namespace once it
# has been unused for 10 minutes: `asya-` (or a delay queue's `asya.delay.N.asya-`), then a
# test prefix with the pid, time or random suffix the tests write, then `-`. Names a user or
# `asya dev` gives (`asya-team-0-echo`) do not match.
TEST_QUEUES='^(asya\.delay\.[0-9]+\.)?asya-(t[0-9a-f]{6,}|tt[0-9]+-[0-9]+|suite[0-9]+-[0-9]+|gw[tfp][0-9]+x[0-9]+|retry[0-9]+x[0-9]+|dev[0-9]+x[0-9]+|bench[0-9]+(raw|sc)[0-9]+|t-resync-[0-9a-f]{8})-'
timeout 60 rabbitmqctl -q set_policy --apply-to queues asya-test-queues-expire "$TEST_QUEUES" '{"expires": 600000}' >/dev/null 2>&1 ||
  log "could not set the broker policy that expires test queues (queues of test runs stay)"

# ---------------------------------------------------------------- PostgreSQL
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
fi
if ! port_open 5432; then
  log "starting PostgreSQL"
  for v in /etc/postgresql/*/; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start >&2 || true
  done
  wait_port 5432 60 || { log "PostgreSQL did not open 5432"; exit 1; }
fi
PG_URL=postgres://postgres@127.0.0.1:5432/postgres
if command -v psql >/dev/null 2>&1 && ! psql "$PG_URL" -qAtc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for a password over TCP: trust loopback for the tests.
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  done
  for v in /etc/postgresql/*/; do pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main reload >&2 || true; done
fi
log "PostgreSQL ready on 127.0.0.1:5432"

# ---------------------------------------------------------------- Python venv
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import moto, pytest, flask, flask_cors' >/dev/null 2>&1; then
  log "pip install moto[server] pytest"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' 'pytest>=8' >&2
fi

# ---------------------------------------------------------------- moto
if ! port_open "$MOTO_PORT"; then
  log "starting moto on 127.0.0.1:$MOTO_PORT"
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"
  wait_port "$MOTO_PORT" 30 || { log "moto did not start"; tail -20 "$RUN/moto.log" >&2; exit 1; }
fi
log "moto ready on 127.0.0.1:$MOTO_PORT"

cat <<ENV
export ASYA_TEST_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/%2f
export ASYA_TEST_POSTGRES_URL=$PG_URL
export ASYA_TEST_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_REGION=\${AWS_REGION:-us-east-1}
export ASYA_TEST_PYTHON=$VENV/bin/python
ENV
