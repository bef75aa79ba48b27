#!/usr/bin/env bash
# Stops what up.sh started itself (moto). RabbitMQ is a machine service and stays.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIDF="$ROOT/tests/servers/.run/moto.pid"
if [ -f "$PIDF" ]; then
  pid=$(cat "$PIDF")
  if grep -q moto "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  rm -f "$PIDF"
fi
