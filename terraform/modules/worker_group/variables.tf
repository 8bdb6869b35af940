variable "name" {
  type        = string
  description = "Worker group name (a key of the root's worker_groups), e.g. \"ai\"; its NATS user is worker-<name>."

  validation {
    condition     = can(regex("^[a-z0-9_-]{1,32}$", var.name))
    error_message = "A worker group name is 1 to 32 lowercase letters, digits, '-' or '_' (it names the group's NATS user, as `edge nats-auth` does)."
  }
}

variable "name_prefix" {
  type        = string
  description = "Deployment name prefix; the service is <name_prefix>-worker-<name>."
}

variable "services" {
  type        = list(string)
  description = "Services this group serves over NATS, passed as `worker --services a,b`."

  validation {
    condition     = length(var.services) > 0
    error_message = "A worker group needs at least one service."
  }
}

variable "min_tasks" {
  type        = number
  description = "Minimum (and initial desired) number of worker tasks."
  default     = 1
}

variable "max_tasks" {
  type        = number
  description = "Maximum number of worker tasks under autoscaling."
  default     = 4
}

variable "cpu" {
  type        = number
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  default     = 256
}

variable "memory" {
  type        = number
  description = "Fargate task memory in MiB."
  default     = 512
}

variable "cpu_architecture" {
  type        = string
  description = "X86_64 or ARM64; must match the image."
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "cluster_arn" {
  type        = string
  description = "ARN of the ECS cluster the service runs in."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the tasks (no public IPs)."
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the tasks (the network module's worker group)."
}

variable "image" {
  type        = string
  description = "Container image URI (the same image as the edge). An ECR URI also scopes the pull permissions to that repository."
}

variable "admin_port" {
  type        = number
  description = "Admin/metrics port (EDGE_ADMIN_LISTEN on 0.0.0.0, token protected, VPC only)."
  default     = 9901
}

variable "drain_delay_seconds" {
  type        = number
  description = "EDGE_DRAIN_DELAY for the worker."
  default     = 15
}

variable "shutdown_timeout_seconds" {
  type        = number
  description = "EDGE_SHUTDOWN_TIMEOUT: the worker finishes received requests and exits within this long of SIGTERM."
  default     = 30
}

variable "stop_timeout_seconds" {
  type        = number
  description = "ECS stopTimeout: SIGKILL this long after SIGTERM. Must be >= drain + shutdown and <= 120."
  default     = 60

  validation {
    condition     = var.stop_timeout_seconds >= 2 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be between 2 and 120 (Fargate limit)."
  }
}

variable "max_concurrency" {
  type        = number
  description = "EDGE_WORKER_MAX_CONCURRENCY: requests handled at once per task."
  default     = 256
}

variable "nats_urls" {
  type        = list(string)
  description = "NATS server URLs; every one must start with tls://. Joined with commas into EDGE_NATS_URL."

  validation {
    condition     = length(var.nats_urls) > 0 && alltrue([for u in var.nats_urls : startswith(u, "tls://")])
    error_message = "Every NATS URL must start with tls://."
  }
}

variable "config_toml" {
  type        = string
  description = "Non-secret TOML configuration passed as EDGE_CONFIG_TOML; the entrypoint must write it to a file and point EDGE_CONFIG at it (README, \"Secrets reach the container\"). Never holds secrets."
  default     = <<-EOT
    [store]
    backend = "jetstream"
    bucket = "edge"
    replicas = 3
  EOT
}

variable "extra_environment" {
  type        = map(string)
  description = "Additional non-secret EDGE_* variables. Never put tokens or keys here; use secrets."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : length(regexall("(TOKEN|KEY|SECRET|PASSWORD|CREDS|CREDENTIALS|PEM)", upper(k))) == 0])
    error_message = "extra_environment must not carry secrets (names with TOKEN, KEY, SECRET, PASSWORD, CREDS, CREDENTIALS or PEM)."
  }
}

variable "admin_token_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the admin bearer token (EDGE_ADMIN_TOKEN)."
}

variable "nats_password_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the NATS password of this group's user `worker-<name>` (EDGE_NATS_PASSWORD)."
}

variable "nats_signing_keys_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the keys that sign and verify requests over NATS (EDGE_NATS_SIGNING_KEYS), the same for the edge and every worker group."
}

variable "nats_ca_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the CA (PEM) of the NATS servers (EDGE_NATS_CA_PEM)."
}

variable "llm_api_keys_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the LLM provider keys (EDGE_LLM_API_KEYS); null for groups that do not serve llm."
  default     = null
}

variable "nats_client_cert_secret_arn" {
  type        = string
  description = "Optional Secrets Manager ARN of a NATS client certificate (PEM) for mutual TLS."
  default     = null
}

variable "nats_client_key_secret_arn" {
  type        = string
  description = "Optional Secrets Manager ARN of the NATS client key (PEM) for mutual TLS."
  default     = null
}

variable "secrets_kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys that encrypt the secrets (kms:Decrypt via Secrets Manager only)."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "CloudWatch Logs retention of the task logs."
  default     = 365
}

variable "log_kms_key_arn" {
  type        = string
  description = "Optional KMS key ARN that encrypts the log group."
  default     = null
}

variable "cpu_target_percent" {
  type        = number
  description = "Target tracking: average service CPU utilisation."
  default     = 60
}

variable "enable_execute_command" {
  type        = bool
  description = "Allow ECS Exec into worker tasks."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
