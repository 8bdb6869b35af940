#!/bin/sh
# The container's entrypoint. Secrets reach a container as environment variables (ECS task
# `secrets` from Secrets Manager); the binary reads certificates and NATS credentials from files.
# Each PEM given is written to a file only this user can read, the binary pointed at it, and the
# variable dropped; then edge replaces this shell (exec), so it is PID 1 and receives SIGTERM.
set -eu
dir="${EDGE_SECRETS_DIR:-/tmp/edge-secrets}"
umask 077
mkdir -p "$dir"

# write VAR FILE TARGET: if $VAR is set, write it to $dir/FILE and export TARGET=that path.
write() {
    eval "value=\${$1:-}"
    if [ -n "$value" ]; then
        printf '%s\n' "$value" > "$dir/$2"
        export "$3=$dir/$2"
        unset "$1"
    fi
}
write EDGE_TLS_CERT_PEM tls-cert.pem EDGE_TLS_CERT
write EDGE_TLS_KEY_PEM tls-key.pem EDGE_TLS_KEY
write EDGE_NATS_CA_PEM nats-ca.pem EDGE_NATS_CA
write EDGE_NATS_CERT_PEM nats-cert.pem EDGE_NATS_CERT
write EDGE_NATS_KEY_PEM nats-key.pem EDGE_NATS_KEY
write EDGE_NATS_CREDS nats.creds EDGE_NATS_CREDENTIALS
# A whole TOML config (e.g. `[store] replicas = 3`) may arrive the same way.
write EDGE_CONFIG_TOML edge.toml EDGE_CONFIG
unset value

exec /usr/local/bin/edge "$@"
