# Security groups only; the VPC is an input.
#
# Ingress from anywhere exists on the ALB only (443 and 80, IPv4 and IPv6). Every other ingress
# comes from another group or from the VPC CIDR. Egress is listed per group:
#   alb    -> edge:listen_port (traffic and health checks)
#   edge   -> nats:4222, 443 anywhere (ECR, Secrets Manager, CloudWatch Logs, LLM providers)
#   worker -> nats:4222, 443 anywhere (same reasons)
#   nats   -> nats:6222 (routes), 443 anywhere (Secrets Manager, SSM), 80 anywhere (Debian apt
#             mirror; packages are signature-checked)
# With VPC interface endpoints for ECR, Secrets Manager, Logs and SSM, the 443 rules can be
# narrowed to the endpoints' security group (LLM providers still need the internet).

locals {
  anywhere_v4 = "0.0.0.0/0"
  anywhere_v6 = "::/0"
}

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached in the alb module (aws_lb) through this module's output; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-alb-"
  description = "Public ALB for edge: HTTPS 443 and HTTP 80 (redirect only) from the internet"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "edge" {
  #checkov:skip=CKV2_AWS_5:Attached in the edge_service module (aws_ecs_service) through this module's output; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-edge-"
  description = "Edge tasks: HTTPS from the ALB, admin from the VPC"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-edge" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "worker" {
  #checkov:skip=CKV2_AWS_5:Attached in the worker_group module (aws_ecs_service) through this module's output; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-worker-"
  description = "Worker tasks: admin/metrics from the VPC only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-worker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "nats" {
  #checkov:skip=CKV2_AWS_5:Attached in the nats_cluster module (aws_instance) through this module's output; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-nats-"
  description = "NATS nodes: clients from edge and workers, routes from peers, monitoring from the VPC"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-nats" })

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------- ALB

resource "aws_vpc_security_group_ingress_rule" "alb_https_v4" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet (IPv4)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.anywhere_v4
}

resource "aws_vpc_security_group_ingress_rule" "alb_https_v6" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet (IPv6)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv6         = local.anywhere_v6
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_v4" {
  #checkov:skip=CKV_AWS_260:Port 80 on the public ALB only answers a 301 redirect to HTTPS (listener has no forward action).
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet (IPv4), redirected to HTTPS by the listener"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = local.anywhere_v4
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_v6" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet (IPv6), redirected to HTTPS by the listener"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv6         = local.anywhere_v6
}

resource "aws_vpc_security_group_egress_rule" "alb_to_edge" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward traffic and health checks to edge tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.listen_port
  to_port                      = var.listen_port
  referenced_security_group_id = aws_security_group.edge.id
}

# ---------------------------------------------------------------- edge

resource "aws_vpc_security_group_ingress_rule" "edge_from_alb" {
  security_group_id            = aws_security_group.edge.id
  description                  = "HTTPS from the ALB only"
  ip_protocol                  = "tcp"
  from_port                    = var.listen_port
  to_port                      = var.listen_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "edge_admin" {
  security_group_id = aws_security_group.edge.id
  description       = "Admin/metrics (bearer token) from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.admin_port
  to_port           = var.admin_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "edge_to_nats" {
  security_group_id            = aws_security_group.edge.id
  description                  = "NATS client connections (TLS)"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_client_port
  to_port                      = var.nats_client_port
  referenced_security_group_id = aws_security_group.nats.id
}

resource "aws_vpc_security_group_egress_rule" "edge_https" {
  security_group_id = aws_security_group.edge.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, Logs) and LLM providers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.anywhere_v4
}

# ---------------------------------------------------------------- workers

resource "aws_vpc_security_group_ingress_rule" "worker_admin" {
  security_group_id = aws_security_group.worker.id
  description       = "Admin/metrics (bearer token) from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.admin_port
  to_port           = var.admin_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "worker_to_nats" {
  security_group_id            = aws_security_group.worker.id
  description                  = "NATS client connections (TLS)"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_client_port
  to_port                      = var.nats_client_port
  referenced_security_group_id = aws_security_group.nats.id
}

resource "aws_vpc_security_group_egress_rule" "worker_https" {
  security_group_id = aws_security_group.worker.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, Logs) and LLM providers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.anywhere_v4
}

# ---------------------------------------------------------------- NATS

resource "aws_vpc_security_group_ingress_rule" "nats_from_edge" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS clients: edge tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_client_port
  to_port                      = var.nats_client_port
  referenced_security_group_id = aws_security_group.edge.id
}

resource "aws_vpc_security_group_ingress_rule" "nats_from_worker" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS clients: worker tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_client_port
  to_port                      = var.nats_client_port
  referenced_security_group_id = aws_security_group.worker.id
}

resource "aws_vpc_security_group_ingress_rule" "nats_routes" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS cluster routes from peer nodes only"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_cluster_port
  to_port                      = var.nats_cluster_port
  referenced_security_group_id = aws_security_group.nats.id
}

resource "aws_vpc_security_group_ingress_rule" "nats_monitor" {
  security_group_id = aws_security_group.nats.id
  description       = "NATS monitoring (/healthz, /varz) from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.nats_monitor_port
  to_port           = var.nats_monitor_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "nats_routes" {
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS cluster routes to peer nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.nats_cluster_port
  to_port                      = var.nats_cluster_port
  referenced_security_group_id = aws_security_group.nats.id
}

resource "aws_vpc_security_group_egress_rule" "nats_https" {
  security_group_id = aws_security_group.nats.id
  description       = "HTTPS to Secrets Manager, SSM and the SSM agent download"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.anywhere_v4
}

resource "aws_vpc_security_group_egress_rule" "nats_apt" {
  security_group_id = aws_security_group.nats.id
  description       = "HTTP to the Debian package mirror (signed packages) at boot"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = local.anywhere_v4
}
