#!/usr/bin/env bash
# Makes the private CAs and certificates of a deployment (see certs/README.md):
#   certs/make-production.sh OUT_DIR [NATS_DOMAIN] [EDGE_NAME]
# NATS_DOMAIN is the Cloud Map namespace of the NATS nodes (default nats.edge.internal, the
# terraform default); EDGE_NAME the
# name of the edge's certificate for the load balancer's hop (default edge.internal).
# Uses `edge` from PATH, or EDGE_BIN. Refuses to overwrite anything.
set -euo pipefail
out="${1:?usage: $0 OUT_DIR [NATS_DOMAIN] [EDGE_NAME]}"
nats_domain="${2:-nats.edge.internal}"
edge_name="${3:-edge.internal}"
edge="${EDGE_BIN:-edge}"

"$edge" certs ca --out "$out/edge-ca" --name "Edge load balancer hop CA"
"$edge" certs issue --ca "$out/edge-ca" --out "$out/edge" --name "$edge_name"

"$edge" certs ca --out "$out/nats-ca" --name "Edge NATS CA"
# One certificate for the three nodes (terraform takes one chain and key for all of them):
# server and client, as a node accepts clients and dials its peers on the routes.
"$edge" certs issue --ca "$out/nats-ca" --out "$out/nats" --client \
  --name "nats-0.$nats_domain,nats-1.$nats_domain,nats-2.$nats_domain"
echo "done: keep $out/*-ca/ca-key.pem offline; load the rest into Secrets Manager"
