#!/usr/bin/env bash
# Clients this project did not write, for the interoperability tests: Python's
# pika (AMQP 0.9.1) and pyzmq (ZeroMQ), from Debian's packages.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! /usr/bin/python3 -c "import pika, zmq" >/dev/null 2>&1; then
  echo "ensure-peers: installing python3-pika and python3-zmq (Debian packages)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-pika python3-zmq
fi
/usr/bin/python3 -c "import pika, zmq; print('ensure-peers: pika', pika.__version__, 'pyzmq', zmq.__version__)"
