# Edge on ECS Fargate behind a public ALB, workers as one ECS service per group, and a
# three-node NATS JetStream cluster on EC2 with EBS. See README.md for the timing contract and
# the runbook.

locals {
  nats_client_mtls = var.nats_client_cert_secret_arn != null && var.nats_client_key_secret_arn != null

  # Every service some worker group serves: the edge sends those to NATS (EDGE_REMOTE).
  remote_services = sort(distinct(flatten([for g in values(var.worker_groups) : g.services])))

  # The NATS users and permissions (`edge nats-auth`), and the groups they must be made for.
  nats_permissions   = var.nats_permissions != null ? var.nats_permissions : file("${path.module}/nats-permissions.conf")
  nats_groups_header = "# worker groups: ${join(" ", [for k in sort(keys(var.worker_groups)) : "${k}=${join(",", sort(distinct(var.worker_groups[k].services)))}"])}"
}

# The NATS permissions were made for these worker groups, and each group has its password: a
# plan that breaks it fails here rather than locking a group out of NATS in production.
resource "terraform_data" "nats_permissions_contract" {
  input = sha256(local.nats_permissions)

  lifecycle {
    precondition {
      condition     = strcontains(local.nats_permissions, "${local.nats_groups_header}\n")
      error_message = "The NATS permissions were made for other worker groups; make them again: edge nats-auth --passwords-include auth.conf ${join(" ", [for k in sort(keys(var.worker_groups)) : "--worker-group ${k}=${join(",", sort(distinct(var.worker_groups[k].services)))}"])} (and pass the output as nats_permissions)."
    }

    precondition {
      condition     = length(setsubtract(keys(var.worker_groups), keys(var.nats_worker_password_secret_arns))) == 0
      error_message = "nats_worker_password_secret_arns needs a password secret for every worker group."
    }
  }
}

# The timing contract between ALB, ECS and the edge binary (README, "Timing"). A plan that
# breaks it fails here rather than cutting players' streams in production.
resource "terraform_data" "timing_contract" {
  input = {
    sse_heartbeat        = var.sse_heartbeat_seconds
    alb_idle_timeout     = var.alb_idle_timeout_seconds
    edge_keepalive       = var.edge_keepalive_seconds
    drain_delay          = var.drain_delay_seconds
    deregistration_delay = var.deregistration_delay_seconds
    shutdown_timeout     = var.shutdown_timeout_seconds
    stop_timeout         = var.stop_timeout_seconds
  }

  lifecycle {
    precondition {
      condition     = var.sse_heartbeat_seconds < var.alb_idle_timeout_seconds && var.alb_idle_timeout_seconds < var.edge_keepalive_seconds
      error_message = "Need SSE heartbeat < ALB idle timeout < edge keep-alive (15 < 60 < 75 by default)."
    }

    precondition {
      condition     = var.drain_delay_seconds <= var.deregistration_delay_seconds
      error_message = "Need drain delay <= deregistration delay."
    }

    precondition {
      condition     = var.stop_timeout_seconds >= var.drain_delay_seconds + var.shutdown_timeout_seconds && var.stop_timeout_seconds <= 120
      error_message = "Need drain + shutdown <= stop timeout <= 120."
    }

    precondition {
      condition     = var.health_check_interval_seconds * var.unhealthy_threshold <= var.drain_delay_seconds
      error_message = "Need health check interval x unhealthy threshold <= drain delay."
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

# ---------------------------------------------------------------- log encryption

locals {
  account_id            = data.aws_caller_identity.current.account_id
  region                = data.aws_region.current.name
  partition             = data.aws_partition.current.partition
  log_groups_arn_prefix = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:"
}

resource "aws_kms_key" "logs" {
  count                   = var.log_kms_key_arn == null ? 1 : 0
  description             = "${var.name}: CloudWatch Logs of edge, workers and NATS"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsOfThisDeployment"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "${local.log_groups_arn_prefix}/ecs/${var.name}/*",
              "${local.log_groups_arn_prefix}/ec2/${var.name}/*",
            ]
          }
        }
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "logs" {
  count         = var.log_kms_key_arn == null ? 1 : 0
  name          = "alias/${var.name}-logs"
  target_key_id = aws_kms_key.logs[0].key_id
}

locals {
  log_kms_key_arn = var.log_kms_key_arn != null ? var.log_kms_key_arn : aws_kms_key.logs[0].arn
}

# ---------------------------------------------------------------- ECS

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

module "network" {
  source = "./modules/network"

  name     = var.name
  vpc_id   = var.vpc_id
  vpc_cidr = var.vpc_cidr
  tags     = var.tags
}

module "alb" {
  source = "./modules/alb"

  name                          = var.name
  vpc_id                        = var.vpc_id
  public_subnet_ids             = var.public_subnet_ids
  security_group_ids            = [module.network.alb_security_group_id]
  certificate_arn               = var.certificate_arn
  access_logs_bucket            = var.access_logs_bucket
  idle_timeout_seconds          = var.alb_idle_timeout_seconds
  deregistration_delay_seconds  = var.deregistration_delay_seconds
  health_check_interval_seconds = var.health_check_interval_seconds
  unhealthy_threshold           = var.unhealthy_threshold
  enable_deletion_protection    = var.alb_deletion_protection
  web_acl_arn                   = var.web_acl_arn
  tags                          = var.tags
}

module "nats" {
  source = "./modules/nats_cluster"

  name                     = var.name
  vpc_id                   = var.vpc_id
  subnet_ids               = var.private_subnet_ids
  security_group_ids       = [module.network.nats_security_group_id]
  namespace_name           = var.nats_namespace
  instance_type            = var.nats_instance_type
  architecture             = var.nats_architecture
  ami_id                   = var.nats_ami_id
  volume_size_gb           = var.nats_volume_size_gb
  client_tls_verify        = var.nats_require_client_certs
  server_cert_secret_arn   = var.nats_server_cert_secret_arn
  server_key_secret_arn    = var.nats_server_key_secret_arn
  ca_secret_arn            = var.nats_ca_secret_arn
  auth_config_secret_arn   = var.nats_auth_config_secret_arn
  permissions              = local.nats_permissions
  secrets_kms_key_arns     = var.secrets_kms_key_arns
  install_ssm_agent        = var.nats_install_ssm_agent
  install_cloudwatch_agent = var.nats_install_cloudwatch_agent
  alarm_actions            = var.alarm_actions
  log_retention_days       = var.log_retention_days
  log_kms_key_arn          = local.log_kms_key_arn
  tags                     = var.tags
}

module "edge" {
  source = "./modules/edge_service"

  # The target group must be attached to the ALB (listener) before the service uses it.
  depends_on = [module.alb]

  name                     = var.name
  cluster_arn              = aws_ecs_cluster.this.arn
  subnet_ids               = var.private_subnet_ids
  security_group_ids       = [module.network.edge_security_group_id]
  vpc_cidr                 = var.vpc_cidr
  target_group_arn         = module.alb.target_group_arn
  alb_arn_suffix           = module.alb.alb_arn_suffix
  target_group_arn_suffix  = module.alb.target_group_arn_suffix
  image                    = var.image
  cpu                      = var.edge_cpu
  memory                   = var.edge_memory
  cpu_architecture         = var.cpu_architecture
  min_tasks                = var.edge_min_tasks
  max_tasks                = var.edge_max_tasks
  drain_delay_seconds      = var.drain_delay_seconds
  shutdown_timeout_seconds = var.shutdown_timeout_seconds
  stop_timeout_seconds     = var.stop_timeout_seconds
  idle_timeout_seconds     = var.edge_keepalive_seconds
  sse_heartbeat_seconds    = var.sse_heartbeat_seconds
  nats_urls                = module.nats.client_urls
  remote_services          = local.remote_services

  admin_token_secret_arn       = var.admin_token_secret_arn
  nats_password_secret_arn     = var.nats_edge_password_secret_arn
  nats_signing_keys_secret_arn = var.nats_signing_keys_secret_arn
  llm_api_keys_secret_arn      = var.llm_api_keys_secret_arn
  tls_cert_secret_arn          = var.tls_cert_secret_arn
  tls_key_secret_arn           = var.tls_key_secret_arn
  nats_ca_secret_arn           = var.nats_ca_secret_arn
  nats_client_cert_secret_arn  = local.nats_client_mtls ? var.nats_client_cert_secret_arn : null
  nats_client_key_secret_arn   = local.nats_client_mtls ? var.nats_client_key_secret_arn : null
  secrets_kms_key_arns         = var.secrets_kms_key_arns

  log_retention_days     = var.log_retention_days
  log_kms_key_arn        = local.log_kms_key_arn
  enable_execute_command = var.enable_execute_command
  tags                   = var.tags
}

module "worker_group" {
  source   = "./modules/worker_group"
  for_each = var.worker_groups

  name               = each.key
  name_prefix        = var.name
  services           = each.value.services
  min_tasks          = each.value.min_tasks
  max_tasks          = each.value.max_tasks
  cpu                = each.value.cpu
  memory             = each.value.memory
  cpu_architecture   = var.cpu_architecture
  cluster_arn        = aws_ecs_cluster.this.arn
  subnet_ids         = var.private_subnet_ids
  security_group_ids = [module.network.worker_security_group_id]
  image              = var.image
  nats_urls          = module.nats.client_urls

  drain_delay_seconds      = var.drain_delay_seconds
  shutdown_timeout_seconds = var.shutdown_timeout_seconds
  stop_timeout_seconds     = var.stop_timeout_seconds

  admin_token_secret_arn       = var.admin_token_secret_arn
  nats_password_secret_arn     = lookup(var.nats_worker_password_secret_arns, each.key, null)
  nats_signing_keys_secret_arn = var.nats_signing_keys_secret_arn
  nats_ca_secret_arn           = var.nats_ca_secret_arn
  llm_api_keys_secret_arn      = contains(each.value.services, "llm") ? var.llm_api_keys_secret_arn : null
  nats_client_cert_secret_arn  = local.nats_client_mtls ? var.nats_client_cert_secret_arn : null
  nats_client_key_secret_arn   = local.nats_client_mtls ? var.nats_client_key_secret_arn : null
  secrets_kms_key_arns         = var.secrets_kms_key_arns

  log_retention_days     = var.log_retention_days
  log_kms_key_arn        = local.log_kms_key_arn
  enable_execute_command = var.enable_execute_command
  tags                   = var.tags
}
