# What an ECS task of the edge binary needs around it, the same for the edge service and every
# worker group: its log group, the execution role (pull the image, write the logs, read exactly
# the listed secrets) and a task role with no AWS permissions but ECS Exec's, when enabled.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region = data.aws_region.current.name

  # ECR repository of the image, when it is one: pull permissions are scoped to it.
  ecr_match = try(regex("^(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    data.aws_partition.current.partition, local.ecr_match[1], local.ecr_match[0], local.ecr_match[2],
  )

  # Every secret ARN the execution role may read: exactly these, no wildcard. A valueFrom may
  # carry a JSON-key suffix (arn:...:secret:name-AbCdEf:key::); IAM wants the secret's own ARN.
  secret_value_froms = compact(var.secret_value_froms)
  secret_arns        = distinct([for a in local.secret_value_froms : join(":", slice(split(":", a), 0, min(7, length(split(":", a)))))])
}

# ---------------------------------------------------------------- logs

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------- IAM

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
  name_prefix        = substr("${var.name}-exec-", 0, 38)
  description        = "ECS agent for ${var.description}: pull image, write logs, read the listed secrets"
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
  name   = var.execution_policy_name
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Edge and workers call no AWS API: the task role has no permissions unless ECS Exec is on.
resource "aws_iam_role" "task" {
  name_prefix        = substr("${var.name}-task-", 0, 38)
  description        = "Task role of ${var.description} (no AWS API access unless ECS Exec is enabled)"
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
