data "aws_region" "current" {}

locals {
  cluster_name = element(split("/", var.cluster_arn), 1)
  region       = data.aws_region.current.name

  # Task-scoped scratch volume, mounted over the image's /var/lib/edge (owned by the edge user):
  # the data directory, and under it the directory where scripts/docker-entrypoint.sh writes the
  # *_PEM secrets as files (README, "Secrets reach the container").
  scratch_dir = "/var/lib/edge"

  mtls = var.nats_client_cert_secret_arn != null && var.nats_client_key_secret_arn != null

  # Plain settings only; never a token, key or password (those are in `secrets` below). The
  # paths of the TLS and NATS files are exported by the entrypoint after it writes them.
  environment = [
    { name = "EDGE_LISTEN", value = "0.0.0.0:${var.listen_port}" },
    { name = "EDGE_ADMIN_LISTEN", value = "0.0.0.0:${var.admin_port}" },
    { name = "EDGE_NATS_URL", value = join(",", var.nats_urls) },
    # Its NATS user (`edge nats-auth`); the password is a secret below.
    { name = "EDGE_NATS_USER", value = "edge" },
    { name = "EDGE_STORE", value = "jetstream" },
    { name = "EDGE_DRAIN_DELAY", value = "${var.drain_delay_seconds}s" },
    { name = "EDGE_SHUTDOWN_TIMEOUT", value = "${var.shutdown_timeout_seconds}s" },
    { name = "EDGE_IDLE_TIMEOUT", value = "${var.idle_timeout_seconds}s" },
    { name = "EDGE_SSE_HEARTBEAT", value = "${var.sse_heartbeat_seconds}s" },
    { name = "EDGE_TRUSTED_PROXIES", value = var.vpc_cidr },
    { name = "EDGE_DATA_DIR", value = local.scratch_dir },
    { name = "EDGE_SECRETS_DIR", value = "${local.scratch_dir}/secrets" },
    { name = "EDGE_CONFIG_TOML", value = var.config_toml },
    { name = "EDGE_LOG_FORMAT", value = "json" },
  ]

  optional_environment = concat(
    length(var.remote_services) > 0 ? [{ name = "EDGE_REMOTE", value = join(",", var.remote_services) }] : [],
    [for k in sort(keys(var.extra_environment)) : { name = k, value = var.extra_environment[k] }],
  )

  optional_secrets = local.mtls ? [
    { name = "EDGE_NATS_CERT_PEM", valueFrom = var.nats_client_cert_secret_arn },
    { name = "EDGE_NATS_KEY_PEM", valueFrom = var.nats_client_key_secret_arn },
  ] : []

  # Every secret the task definition injects: the execution role may read exactly these.
  secret_value_froms = compact([
    var.admin_token_secret_arn,
    var.nats_password_secret_arn,
    var.nats_signing_keys_secret_arn,
    var.llm_api_keys_secret_arn,
    var.tls_cert_secret_arn,
    var.tls_key_secret_arn,
    var.nats_ca_secret_arn,
    var.nats_client_cert_secret_arn,
    var.nats_client_key_secret_arn,
  ])
}

# ---------------------------------------------------------------- logs and IAM

module "iam" {
  source = "../task_iam"

  name                   = "${var.name}-edge"
  description            = "${var.name} edge"
  log_group_name         = "/ecs/${var.name}/edge"
  execution_policy_name  = "edge-execution"
  image                  = var.image
  secret_value_froms     = local.secret_value_froms
  secrets_kms_key_arns   = var.secrets_kms_key_arns
  log_retention_days     = var.log_retention_days
  log_kms_key_arn        = var.log_kms_key_arn
  enable_execute_command = var.enable_execute_command
  tags                   = var.tags
}

# Where these lived before they were shared with the other ECS module.
moved {
  from = aws_cloudwatch_log_group.this
  to   = module.iam.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.execution
  to   = module.iam.aws_iam_role.execution
}

moved {
  from = aws_iam_role_policy.execution
  to   = module.iam.aws_iam_role_policy.execution
}

moved {
  from = aws_iam_role.task
  to   = module.iam.aws_iam_role.task
}

moved {
  from = aws_iam_role_policy.exec
  to   = module.iam.aws_iam_role_policy.exec
}

# ---------------------------------------------------------------- task definition

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-edge"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = module.iam.execution_role_arn
  task_role_arn            = module.iam.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-scoped scratch volume (Fargate ephemeral storage, encrypted, gone with the task): the
  # only writable path, since the root filesystem is read-only. Fargate has no tmpfs.
  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "edge"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      stopTimeout            = var.stop_timeout_seconds

      portMappings = [
        { name = "https", containerPort = var.listen_port, protocol = "tcp" },
        { name = "admin", containerPort = var.admin_port, protocol = "tcp" },
      ]

      healthCheck = {
        command  = ["CMD", "/usr/local/bin/edge", "healthcheck"]
        interval = 10
        timeout  = 5
        retries  = 3
        # Start-up opens the store and connects to NATS first: give it time before liveness counts.
        startPeriod = 90
      }

      environment = concat(local.environment, local.optional_environment)

      # Everything secret comes from Secrets Manager, never from "environment".
      secrets = concat([
        { name = "EDGE_ADMIN_TOKEN", valueFrom = var.admin_token_secret_arn },
        { name = "EDGE_LLM_API_KEYS", valueFrom = var.llm_api_keys_secret_arn },
        { name = "EDGE_TLS_CERT_PEM", valueFrom = var.tls_cert_secret_arn },
        { name = "EDGE_TLS_KEY_PEM", valueFrom = var.tls_key_secret_arn },
        { name = "EDGE_NATS_CA_PEM", valueFrom = var.nats_ca_secret_arn },
        { name = "EDGE_NATS_PASSWORD", valueFrom = var.nats_password_secret_arn },
        { name = "EDGE_NATS_SIGNING_KEYS", valueFrom = var.nats_signing_keys_secret_arn },
      ], local.optional_secrets)

      mountPoints = [
        { sourceVolume = "scratch", containerPath = local.scratch_dir, readOnly = false },
      ]

      ulimits = [
        { name = "nofile", softLimit = 65535, hardLimit = 65535 },
      ]

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = module.iam.log_group_name
          awslogs-region        = local.region
          awslogs-stream-prefix = "edge"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    }
  ])

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.stop_timeout_seconds >= var.drain_delay_seconds + var.shutdown_timeout_seconds
      error_message = "stop_timeout_seconds must be >= drain_delay_seconds + shutdown_timeout_seconds, or ECS kills the edge mid-shutdown."
    }

    precondition {
      condition     = var.drain_delay_seconds < var.shutdown_timeout_seconds
      error_message = "drain_delay_seconds must be below shutdown_timeout_seconds (the shutdown timeout includes the drain)."
    }

    precondition {
      condition     = var.sse_heartbeat_seconds < var.idle_timeout_seconds
      error_message = "sse_heartbeat_seconds must be below idle_timeout_seconds."
    }
  }
}

# ---------------------------------------------------------------- service

resource "aws_ecs_service" "this" {
  name                               = "${var.name}-edge"
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = var.min_tasks
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.health_check_grace_period_seconds
  enable_execute_command             = var.enable_execute_command
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "edge"
    container_port   = var.listen_port
  }

  tags = var.tags

  lifecycle {
    # Autoscaling owns desired_count after the first apply.
    ignore_changes = [desired_count]
  }
}

# ---------------------------------------------------------------- autoscaling

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-edge-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-edge-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
  }
}
