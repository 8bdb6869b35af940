# ---------------------------------------------------------------- placement

variable "name" {
  type        = string
  description = "Deployment name, used as prefix of every resource name (keep it short: ALB names are at most 32 characters)."
  default     = "edge"
}

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC."
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC (admin and NATS monitoring ports, EDGE_TRUSTED_PROXIES)."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets (two or more AZs) for the ALB."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets with outbound internet (NAT) for the tasks and NATS nodes; three AZs recommended (one NATS node per subnet)."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}

# ---------------------------------------------------------------- image and sizing

variable "image" {
  type        = string
  description = "Container image URI of edge, built from the repository Dockerfile (edge and workers run the same image)."
}

variable "cpu_architecture" {
  type        = string
  description = "X86_64 or ARM64 for the Fargate tasks; must match the image."
  default     = "X86_64"
}

variable "edge_cpu" {
  type        = number
  description = "Fargate CPU units of an edge task."
  default     = 512
}

variable "edge_memory" {
  type        = number
  description = "Fargate memory (MiB) of an edge task."
  default     = 1024
}

variable "edge_min_tasks" {
  type        = number
  description = "Minimum number of edge tasks (two or more for zero-downtime deploys)."
  default     = 2
}

variable "edge_max_tasks" {
  type        = number
  description = "Maximum number of edge tasks."
  default     = 10
}

variable "worker_groups" {
  type = map(object({
    services  = list(string)
    min_tasks = optional(number, 1)
    max_tasks = optional(number, 4)
    cpu       = optional(number, 256)
    memory    = optional(number, 512)
  }))
  description = "Worker groups: one ECS service per key, running `edge worker --services <services>`. The edge routes the union of all services to NATS (EDGE_REMOTE)."
  default = {
    ai = {
      services  = ["llm", "story"]
      min_tasks = 2
      max_tasks = 6
    }
  }
}

# ---------------------------------------------------------------- timing (see README)

variable "sse_heartbeat_seconds" {
  type        = number
  description = "EDGE_SSE_HEARTBEAT; must be below alb_idle_timeout_seconds."
  default     = 15
}

variable "alb_idle_timeout_seconds" {
  type        = number
  description = "ALB idle timeout; between the SSE heartbeat and the edge keep-alive."
  default     = 60
}

variable "edge_keepalive_seconds" {
  type        = number
  description = "EDGE_IDLE_TIMEOUT (edge keep-alive); must be above alb_idle_timeout_seconds."
  default     = 75
}

variable "drain_delay_seconds" {
  type        = number
  description = "EDGE_DRAIN_DELAY; <= deregistration delay and >= health check interval x unhealthy threshold."
  default     = 15
}

variable "shutdown_timeout_seconds" {
  type        = number
  description = "EDGE_SHUTDOWN_TIMEOUT (drain included)."
  default     = 30
}

variable "stop_timeout_seconds" {
  type        = number
  description = "ECS stopTimeout; >= drain + shutdown and <= 120."
  default     = 60
}

variable "deregistration_delay_seconds" {
  type        = number
  description = "Target group deregistration delay; >= drain delay."
  default     = 30
}

variable "health_check_interval_seconds" {
  type        = number
  description = "ALB health check interval."
  default     = 5
}

variable "unhealthy_threshold" {
  type        = number
  description = "ALB unhealthy threshold."
  default     = 2
}

# ---------------------------------------------------------------- ALB

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN of the public hostname (HTTPS listener)."
}

variable "access_logs_bucket" {
  type        = string
  description = "Existing S3 bucket for ALB access logs; its bucket policy (ELB log delivery) is managed outside this module."
}

variable "alb_deletion_protection" {
  type        = bool
  description = "Deletion protection of the ALB."
  default     = true
}

variable "web_acl_arn" {
  type        = string
  description = "Optional WAFv2 web ACL to associate with the ALB."
  default     = null
}

# ---------------------------------------------------------------- secrets (Secrets Manager ARNs)

variable "admin_token_secret_arn" {
  type        = string
  description = "Admin listener bearer token (EDGE_ADMIN_TOKEN), edge and workers."
}

variable "llm_api_keys_secret_arn" {
  type        = string
  description = "LLM provider keys `origin=key,...` (EDGE_LLM_API_KEYS): the edge and worker groups serving llm."
}

variable "tls_cert_secret_arn" {
  type        = string
  description = "Edge's PEM certificate chain (private CA; the ALB re-encrypts to it)."
}

variable "tls_key_secret_arn" {
  type        = string
  description = "Edge's PEM private key."
}

variable "nats_ca_secret_arn" {
  type        = string
  description = "CA (PEM) that signs the NATS server (and client) certificates; read by edge, workers and NATS nodes."
}

variable "nats_edge_password_secret_arn" {
  type        = string
  description = "Password of the edges' NATS user `edge` (EDGE_NATS_PASSWORD); auth.conf defines NATS_PASSWORD_EDGE as it (or its bcrypt hash)."
}

variable "nats_worker_password_secret_arns" {
  type        = map(string)
  description = "Password of each worker group's NATS user `worker-<group>` (EDGE_NATS_PASSWORD), by group name; auth.conf defines NATS_PASSWORD_WORKER_<GROUP> as it (or its bcrypt hash)."
}

variable "nats_signing_keys_secret_arn" {
  type        = string
  description = "Keys that sign and verify requests over NATS (EDGE_NATS_SIGNING_KEYS, `id:base64-secret,...`, the first signs): one secret for the edge and every worker group."
}

variable "nats_server_cert_secret_arn" {
  type        = string
  description = "NATS nodes' PEM certificate chain (SANs nats-0..2.<namespace>, EKU serverAuth + clientAuth)."
}

variable "nats_server_key_secret_arn" {
  type        = string
  description = "NATS nodes' PEM private key."
}

variable "nats_auth_config_secret_arn" {
  type        = string
  description = "auth.conf of the NATS nodes: the password variables the permissions name (NATS_PASSWORD_EDGE, NATS_PASSWORD_WORKER_<GROUP>), plain or bcrypt."
}

variable "nats_permissions" {
  type        = string
  description = "NATS users and permissions: `edge nats-auth --worker-group <group>=<services> ... --passwords-include auth.conf`. null: nats-permissions.conf beside this module, made for the default worker_groups."
  default     = null
}

variable "nats_client_cert_secret_arn" {
  type        = string
  description = "Optional NATS client certificate (PEM) for edge and workers; set with nats_require_client_certs."
  default     = null
}

variable "nats_client_key_secret_arn" {
  type        = string
  description = "Optional NATS client key (PEM) for edge and workers."
  default     = null
}

variable "secrets_kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys encrypting the secrets above (empty: AWS-managed key)."
  default     = []
}

# ---------------------------------------------------------------- NATS

variable "nats_namespace" {
  type        = string
  description = "Cloud Map private DNS namespace of the NATS nodes."
  default     = "nats.edge.internal"
}

variable "nats_instance_type" {
  type        = string
  description = "EC2 instance type of each NATS node (Nitro)."
  default     = "t4g.small"
}

variable "nats_architecture" {
  type        = string
  description = "arm64 or x86_64, matching nats_instance_type."
  default     = "arm64"
}

variable "nats_ami_id" {
  type        = string
  description = "AMI of the NATS nodes; null picks the newest official Debian 12."
  default     = null
}

variable "nats_volume_size_gb" {
  type        = number
  description = "gp3 JetStream volume per node, GiB."
  default     = 50
}

variable "nats_require_client_certs" {
  type        = bool
  description = "Require client certificates on the NATS client port (then set nats_client_cert/key_secret_arn)."
  default     = false

  validation {
    # Requiring client certificates without giving the edge and workers one locks them all out.
    condition     = !var.nats_require_client_certs || (var.nats_client_cert_secret_arn != null && var.nats_client_key_secret_arn != null)
    error_message = "nats_require_client_certs needs nats_client_cert_secret_arn and nats_client_key_secret_arn, or every client is refused."
  }
}

variable "nats_install_ssm_agent" {
  type        = bool
  description = "Install the SSM agent on the NATS nodes for shell access without SSH."
  default     = true
}

variable "alarm_actions" {
  type        = list(string)
  description = "SNS topic ARNs notified by the CloudWatch alarms (a NATS node's JetStream volume filling up)."
  default     = []
}

variable "nats_install_cloudwatch_agent" {
  type        = bool
  description = "Install the CloudWatch agent on the NATS nodes: nats-server's log to CloudWatch Logs, memory and JetStream disk use to CloudWatch metrics."
  default     = true
}

# ---------------------------------------------------------------- logs

variable "log_retention_days" {
  type        = number
  description = "CloudWatch Logs retention for all log groups."
  default     = 365
}

variable "log_kms_key_arn" {
  type        = string
  description = "KMS key for the log groups (its policy must allow CloudWatch Logs); null creates one with rotation (about 1 USD/month)."
  default     = null
}

variable "enable_execute_command" {
  type        = bool
  description = "Allow ECS Exec into edge and worker tasks."
  default     = false
}
