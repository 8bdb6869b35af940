#!/bin/sh
# The node's health, from nats-server's own endpoint: JetStream enabled and the server serving.
# Three failures in a row (a wedged process) restart nats-server; a node that is merely waiting
# for quorum still answers 200 here, so a cluster-wide outage does not restart-loop every node.
state=/run/nats-health.failures
if curl -fsS --max-time 5 'http://127.0.0.1:8222/healthz?js-enabled-only=true' >/dev/null; then
  rm -f "$state"
  exit 0
fi
n=$(( $(cat "$state" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state"
echo "nats health check failed ($n in a row)" >&2
if [ "$n" -ge 3 ]; then
  rm -f "$state"
  echo "restarting nats-server (lame duck first: SIGUSR2 through systemd)" >&2
  systemctl restart nats-server
fi
exit 1
