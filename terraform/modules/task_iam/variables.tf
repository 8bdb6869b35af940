variable "name" {
  type        = string
  description = "Prefix of the roles' names, e.g. <name>-edge or <name>-worker-<group>."
}

variable "description" {
  type        = string
  description = "What the task is, for the roles' descriptions, e.g. \"prod edge\"."
}

variable "log_group_name" {
  type        = string
  description = "CloudWatch log group of the tasks."
}

variable "execution_policy_name" {
  type        = string
  description = "Name of the execution role's inline policy."
}

variable "image" {
  type        = string
  description = "Container image URI; an ECR URI scopes the pull permissions to that repository."
}

variable "secret_value_froms" {
  type        = list(string)
  description = "The valueFrom of every secret the task definition injects (nulls are ignored); the execution role may read exactly these."
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

variable "enable_execute_command" {
  type        = bool
  description = "Add ECS Exec's ssmmessages permissions to the task role."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
