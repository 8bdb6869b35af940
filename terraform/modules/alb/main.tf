resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:WAF is optional (var.web_acl_arn); the edge enforces its own rate limits and body limits.
  #checkov:skip=CKV2_AWS_76:No WAF attached by default (see CKV2_AWS_28); the edge is Rust, not Java, so Log4j rules do not apply.
  name                       = substr("${var.name}-alb", 0, 32)
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = var.security_group_ids
  ip_address_type            = "ipv4"
  drop_invalid_header_fields = true
  idle_timeout               = var.idle_timeout_seconds
  enable_http2               = true
  desync_mitigation_mode     = "defensive"
  enable_deletion_protection = var.enable_deletion_protection

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = var.access_logs_prefix
    enabled = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.web_acl_arn == null ? 0 : 1
  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.web_acl_arn
}

resource "aws_lb_target_group" "edge" {
  # A prefix (at most 6 characters): a replacement is created before the old one is destroyed.
  name_prefix                   = "edge-"
  vpc_id                        = var.vpc_id
  protocol                      = "HTTPS"
  port                          = var.target_port
  protocol_version              = "HTTP1"
  target_type                   = "ip"
  load_balancing_algorithm_type = "least_outstanding_requests"
  deregistration_delay          = var.deregistration_delay_seconds
  slow_start                    = 0

  stickiness {
    type    = "lb_cookie"
    enabled = false
  }

  health_check {
    enabled             = true
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = var.health_check_path
    interval            = var.health_check_interval_seconds
    timeout             = 4
    unhealthy_threshold = var.unhealthy_threshold
    healthy_threshold   = 2
    matcher             = "200"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.health_check_interval_seconds > 4
      error_message = "health_check_interval_seconds must exceed the 4 s health check timeout."
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.edge.arn
  }

  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}
