variable "name" {
  type        = string
  description = "Name prefix (service, task family, roles, log group)."
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
  description = "Security groups of the tasks (the network module's edge group)."
}

variable "vpc_cidr" {
  type        = string
  description = "VPC CIDR, passed as EDGE_TRUSTED_PROXIES so X-Forwarded-For from the ALB is believed."
}

variable "target_group_arn" {
  type        = string
  description = "ALB target group the service registers its tasks in."
}

variable "alb_arn_suffix" {
  type        = string
  description = "ARN suffix of the ALB, for the ALBRequestCountPerTarget scaling metric."
}

variable "target_group_arn_suffix" {
  type        = string
  description = "ARN suffix of the target group, for the ALBRequestCountPerTarget scaling metric."
}

variable "image" {
  type        = string
  description = "Container image URI of edge (built from the repository Dockerfile). An ECR URI also scopes the pull permissions to that repository."
}

variable "cpu" {
  type        = number
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  default     = 512
}

variable "memory" {
  type        = number
  description = "Fargate task memory in MiB."
  default     = 1024
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

variable "min_tasks" {
  type        = number
  description = "Minimum (and initial desired) number of edge tasks; at least 2, one per AZ."
  default     = 2

  validation {
    condition     = var.min_tasks >= 2
    error_message = "Run at least 2 edge tasks: one task is an outage during every deploy."
  }
}

variable "max_tasks" {
  type        = number
  description = "Maximum number of edge tasks under autoscaling."
  default     = 10
}

variable "listen_port" {
  type        = number
  description = "HTTPS port the edge listens on (EDGE_LISTEN) and the ALB forwards to."
  default     = 8443
}

variable "admin_port" {
  type        = number
  description = "Admin/metrics port (EDGE_ADMIN_LISTEN on 0.0.0.0, token protected, VPC only)."
  default     = 9901
}

variable "drain_delay_seconds" {
  type        = number
  description = "EDGE_DRAIN_DELAY: after SIGTERM, keep serving with /readyz 503 this long. Must be <= the ALB deregistration delay."
  default     = 15
}

variable "shutdown_timeout_seconds" {
  type        = number
  description = "EDGE_SHUTDOWN_TIMEOUT: the edge exits within this long of SIGTERM, drain included."
  default     = 30
}

variable "stop_timeout_seconds" {
  type        = number
  description = "ECS stopTimeout: SIGKILL this long after SIGTERM. Must be >= drain + shutdown and <= 120 (Fargate maximum)."
  default     = 60

  validation {
    condition     = var.stop_timeout_seconds >= 2 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be between 2 and 120 (Fargate limit)."
  }
}

variable "idle_timeout_seconds" {
  type        = number
  description = "EDGE_IDLE_TIMEOUT: edge keep-alive/idle timeout; must stay above the ALB idle timeout."
  default     = 75
}

variable "sse_heartbeat_seconds" {
  type        = number
  description = "EDGE_SSE_HEARTBEAT: comment sent on a silent SSE stream; must stay below the ALB idle timeout."
  default     = 15
}

variable "health_check_grace_period_seconds" {
  type        = number
  description = "Seconds ECS ignores ALB health after a task starts (TLS files written, NATS connected)."
  default     = 30
}

variable "nats_urls" {
  type        = list(string)
  description = "NATS server URLs; every one must start with tls://. Joined with commas into EDGE_NATS_URL."

  validation {
    condition     = length(var.nats_urls) > 0 && alltrue([for u in var.nats_urls : startswith(u, "tls://")])
    error_message = "Every NATS URL must start with tls://."
  }
}

variable "remote_services" {
  type        = list(string)
  description = "Services the edge sends to workers over NATS (EDGE_REMOTE), e.g. [\"llm\", \"story\"]."
  default     = []
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
  description = "Additional non-secret EDGE_* variables (e.g. EDGE_LOG). Never put tokens or keys here; use secrets."
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
  description = "Secrets Manager ARN of the NATS password of the edges' user `edge` (EDGE_NATS_PASSWORD)."
}

variable "nats_signing_keys_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the keys that sign and verify requests over NATS (EDGE_NATS_SIGNING_KEYS), the same for the edge and every worker group."
}

variable "llm_api_keys_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the LLM provider keys, `origin=key,...` (EDGE_LLM_API_KEYS)."
}

variable "tls_cert_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the edge's PEM certificate chain (EDGE_TLS_CERT_PEM, written to EDGE_TLS_CERT)."
}

variable "tls_key_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the edge's PEM private key (EDGE_TLS_KEY_PEM, written to EDGE_TLS_KEY)."
}

variable "nats_ca_secret_arn" {
  type        = string
  description = "Secrets Manager ARN of the CA (PEM) that signed the NATS server certificates (EDGE_NATS_CA_PEM, written to EDGE_NATS_CA)."
}

variable "nats_client_cert_secret_arn" {
  type        = string
  description = "Optional Secrets Manager ARN of a NATS client certificate (PEM) for mutual TLS (EDGE_NATS_CERT_PEM). Needed when the cluster verifies clients."
  default     = null
}

variable "nats_client_key_secret_arn" {
  type        = string
  description = "Optional Secrets Manager ARN of the NATS client key (PEM) for mutual TLS (EDGE_NATS_KEY_PEM)."
  default     = null
}

variable "secrets_kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys that encrypt the secrets (kms:Decrypt via Secrets Manager only). Empty for the AWS-managed key."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "CloudWatch Logs retention of the task logs."
  default     = 365
}

variable "log_kms_key_arn" {
  type        = string
  description = "Optional KMS key ARN that encrypts the log group (its key policy must allow CloudWatch Logs)."
  default     = null
}

variable "cpu_target_percent" {
  type        = number
  description = "Target tracking: average service CPU utilisation."
  default     = 60
}

variable "requests_per_target" {
  type        = number
  description = "Target tracking: ALBRequestCountPerTarget (requests per task per minute)."
  default     = 1000
}

variable "enable_execute_command" {
  type        = bool
  description = "Allow ECS Exec into edge tasks (adds ssmmessages permissions to the task role)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
