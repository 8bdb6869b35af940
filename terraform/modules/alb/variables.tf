variable "name" {
  type        = string
  description = "Name prefix of the ALB and target group (ALB names are at most 32 characters)."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the target group."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets (two or more AZs) for the internet-facing ALB."
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the ALB (the network module's alb group)."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate ARN for the public HTTPS listener."
}

variable "access_logs_bucket" {
  type        = string
  description = "Existing S3 bucket for ALB access logs; its bucket policy must allow ELB log delivery (managed outside this module)."
}

variable "access_logs_prefix" {
  type        = string
  description = "Key prefix of the access logs in the bucket."
  default     = "edge-alb"
}

variable "idle_timeout_seconds" {
  type        = number
  description = "ALB idle timeout. Must be above the SSE heartbeat (15 s) and below the edge keep-alive (75 s)."
  default     = 60
}

variable "deregistration_delay_seconds" {
  type        = number
  description = "Target group deregistration delay: how long in-flight requests and SSE streams of a deregistered task may continue. Must be >= the edge drain delay."
  default     = 30
}

variable "health_check_interval_seconds" {
  type        = number
  description = "Target health check interval. interval x unhealthy_threshold must be <= the edge drain delay."
  default     = 5
}

variable "unhealthy_threshold" {
  type        = number
  description = "Consecutive failed health checks before a target is unhealthy."
  default     = 2
}

variable "health_check_path" {
  type        = string
  description = "Readiness path probed by the ALB (503 while the edge drains)."
  default     = "/readyz"
}

variable "target_port" {
  type        = number
  description = "Edge HTTPS port of the targets."
  default     = 8443
}

variable "enable_deletion_protection" {
  type        = bool
  description = "Protect the ALB against deletion."
  default     = true
}

variable "web_acl_arn" {
  type        = string
  description = "Optional WAFv2 web ACL ARN to associate with the ALB (null for none)."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
