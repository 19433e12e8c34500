#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672: installs Debian's
# rabbitmq-server when it is missing, starts it when it is stopped, waits for it.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v rabbitmqctl >/dev/null 2>&1; then
  echo "ensure-broker: installing rabbitmq-server (Debian package)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq rabbitmq-server
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "ensure-broker: starting RabbitMQ"
  as_root rabbitmq-server -detached || true
fi

# The node may run with its app stopped (left so by a fault-injection test).
for _ in $(seq 1 60); do
  if rabbitmqctl -q status >/dev/null 2>&1; then break; fi
  sleep 1
done
rabbitmqctl -q start_app >/dev/null 2>&1 || true
rabbitmqctl -q await_startup >/dev/null 2>&1 || true
# Leave the memory alarm as a fresh broker has it.
rabbitmqctl -q set_vm_memory_high_watermark 0.4 >/dev/null 2>&1 || true

for _ in $(seq 1 60); do
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    echo "ensure-broker: RabbitMQ is up on 127.0.0.1:5672"
    exit 0
  fi
  sleep 1
done
echo "ensure-broker: RabbitMQ did not come up on 127.0.0.1:5672" >&2
exit 1
