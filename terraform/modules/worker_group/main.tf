data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  full_name    = "${var.name_prefix}-worker-${var.name}"
  cluster_name = element(split("/", var.cluster_arn), 1)
  region       = data.aws_region.current.name
  scratch_dir  = "/var/lib/edge" # see modules/edge_service

  ecr_match = try(regex("^(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    data.aws_partition.current.partition, local.ecr_match[1], local.ecr_match[0], local.ecr_match[2],
  )

  mtls = var.nats_client_cert_secret_arn != null && var.nats_client_key_secret_arn != null

  # Plain settings only; secrets are in `secrets` below, and the entrypoint exports the paths of
  # the files it writes from them.
  environment = [
    { name = "EDGE_ADMIN_LISTEN", value = "0.0.0.0:${var.admin_port}" },
    { name = "EDGE_NATS_URL", value = join(",", var.nats_urls) },
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
    var.nats_credentials_secret_arn,
    var.nats_ca_secret_arn,
    var.llm_api_keys_secret_arn,
    var.nats_client_cert_secret_arn,
    var.nats_client_key_secret_arn,
  ])
  secret_arns = distinct([for a in local.secret_value_froms : join(":", slice(split(":", a), 0, min(7, length(split(":", a)))))])
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name_prefix}/worker-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = substr("${local.full_name}-exec-", 0, 38)
  description        = "ECS agent for worker group ${var.name}: pull image, write logs, read the listed secrets"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrAuth"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # GetAuthorizationToken has no resource-level permissions.
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrPull"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
      resources = [local.ecr_repository_arn]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SecretsKms"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "worker-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name_prefix        = substr("${local.full_name}-task-", 0, 38)
  description        = "Task role of worker group ${var.name} (no AWS API access unless ECS Exec is enabled)"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

data "aws_iam_policy_document" "exec" {
  statement {
    sid = "EcsExec"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"] # ssmmessages has no resource-level permissions.
  }
}

resource "aws_iam_role_policy" "exec" {
  count  = var.enable_execute_command ? 1 : 0
  name   = "ecs-exec"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.exec.json
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.full_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

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
        { name = "EDGE_NATS_CREDS", valueFrom = var.nats_credentials_secret_arn },
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
          awslogs-group         = aws_cloudwatch_log_group.this.name
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
