data "aws_region" "current" {}

locals {
  full_name    = "${var.name_prefix}-worker-${var.name}"
  cluster_name = element(split("/", var.cluster_arn), 1)
  region       = data.aws_region.current.name
  scratch_dir  = "/var/lib/edge" # see modules/edge_service

  mtls = var.nats_client_cert_secret_arn != null && var.nats_client_key_secret_arn != null

  # Plain settings only; secrets are in `secrets` below, and the entrypoint exports the paths of
  # the files it writes from them.
  environment = [
    { name = "EDGE_ADMIN_LISTEN", value = "0.0.0.0:${var.admin_port}" },
    { name = "EDGE_NATS_URL", value = join(",", var.nats_urls) },
    # Its NATS user (`edge nats-auth`); the password is a secret below.
    { name = "EDGE_NATS_USER", value = "worker-${var.name}" },
    { name = "EDGE_STORE", value = "jetstream" },
    { name = "EDGE_DRAIN_DELAY", value = "${var.drain_delay_seconds}s" },
    { name = "EDGE_SHUTDOWN_TIMEOUT", value = "${var.shutdown_timeout_seconds}s" },
    { name = "EDGE_WORKER_MAX_CONCURRENCY", value = tostring(var.max_concurrency) },
    { name = "EDGE_DATA_DIR", value = local.scratch_dir },
    { name = "EDGE_SECRETS_DIR", value = "${local.scratch_dir}/secrets" },
    { name = "EDGE_CONFIG_TOML", value = var.config_toml },
    { name = "EDGE_LOG_FORMAT", value = "json" },
  ]

  optional_environment = concat(
    [for k in sort(keys(var.extra_environment)) : { name = k, value = var.extra_environment[k] }],
  )

  optional_secrets = concat(
    var.llm_api_keys_secret_arn == null ? [] : [{ name = "EDGE_LLM_API_KEYS", valueFrom = var.llm_api_keys_secret_arn }],
    local.mtls ? [
      { name = "EDGE_NATS_CERT_PEM", valueFrom = var.nats_client_cert_secret_arn },
      { name = "EDGE_NATS_KEY_PEM", valueFrom = var.nats_client_key_secret_arn },
    ] : [],
  )

  secret_value_froms = compact([
    var.admin_token_secret_arn,
    var.nats_password_secret_arn,
    var.nats_signing_keys_secret_arn,
    var.nats_ca_secret_arn,
    var.llm_api_keys_secret_arn,
    var.nats_client_cert_secret_arn,
    var.nats_client_key_secret_arn,
  ])
}

# ---------------------------------------------------------------- logs and IAM

module "iam" {
  source = "../task_iam"

  name                   = local.full_name
  description            = "worker group ${var.name}"
  log_group_name         = "/ecs/${var.name_prefix}/worker-${var.name}"
  execution_policy_name  = "worker-execution"
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

resource "aws_ecs_task_definition" "this" {
  family                   = local.full_name
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

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "worker"
      image                  = var.image
      essential              = true
      command                = ["worker", "--services", join(",", var.services)]
      readonlyRootFilesystem = true
      stopTimeout            = var.stop_timeout_seconds

      portMappings = [
        { name = "admin", containerPort = var.admin_port, protocol = "tcp" },
      ]

      healthCheck = {
        command  = ["CMD", "/usr/local/bin/edge", "healthcheck", "--admin"]
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
          awslogs-stream-prefix = "worker"
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
      error_message = "stop_timeout_seconds must be >= drain_delay_seconds + shutdown_timeout_seconds."
    }

    precondition {
      condition     = var.max_tasks >= var.min_tasks
      error_message = "max_tasks must be >= min_tasks."
    }
  }
}

resource "aws_ecs_service" "this" {
  name                               = local.full_name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = var.min_tasks
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
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

  tags = var.tags

  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.full_name}-cpu"
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
