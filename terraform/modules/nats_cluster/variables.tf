variable "name" {
  type        = string
  description = "Name prefix of the NATS resources, and of the nodes' host names (<name>-nats-N)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,40}$", var.name))
    error_message = "name must be lowercase letters, digits and '-', starting with a letter, at most 41 characters (it prefixes host names)."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the Cloud Map private DNS namespace."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the nodes; node i goes to subnet i mod n. Give three subnets in three AZs."
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the nodes (the network module's nats group)."
}

variable "namespace_name" {
  type        = string
  description = "Cloud Map private DNS namespace; nodes are nats-0.<namespace>, nats-1.<namespace>, nats-2.<namespace>. The server certificate must name them."
  default     = "nats.edge.internal"
}

variable "cluster_name" {
  type        = string
  description = "NATS cluster name."
  default     = "edge"
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of each node (Nitro only: the JetStream volume is found as NVMe)."
  default     = "t4g.small"
}

variable "architecture" {
  type        = string
  description = "CPU architecture of instance_type: arm64 or x86_64 (selects the Debian 12 AMI and SSM agent)."
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of the nodes; null looks up the newest official Debian 12 image for the architecture."
  default     = null
}

variable "volume_size_gb" {
  type        = number
  description = "Size of each node's gp3 JetStream volume in GiB."
  default     = 50
}

variable "volume_iops" {
  type        = number
  description = "Provisioned IOPS of each gp3 volume."
  default     = 3000
}

variable "volume_throughput" {
  type        = number
  description = "Provisioned throughput (MiB/s) of each gp3 volume."
  default     = 125
}

variable "ebs_kms_key_arn" {
  type        = string
  description = "Optional KMS key for the EBS volumes; null uses the account's default EBS key."
  default     = null
}

variable "max_file_store_gb" {
  type        = number
  description = "JetStream max_file_store in GiB; null takes 80% of the volume."
  default     = null
}

variable "max_memory_store_mb" {
  type        = number
  description = "JetStream max_memory_store in MiB."
  default     = 256
}

variable "client_tls_verify" {
  type        = bool
  description = "Require client certificates (mutual TLS) on 4222 in addition to the users' passwords."
  default     = false
}

variable "server_cert_secret_arn" {
  type        = string
  description = "Secrets Manager ARN (plain, no JSON key) of the nodes' PEM certificate chain; SANs nats-0..2.<namespace>; EKU serverAuth and clientAuth (routes are mutual TLS)."
}

variable "server_key_secret_arn" {
  type        = string
  description = "Secrets Manager ARN (plain, no JSON key) of the nodes' PEM private key."
}

variable "ca_secret_arn" {
  type        = string
  description = "Secrets Manager ARN (plain, no JSON key) of the CA (PEM) that signs node and client certificates."
}

variable "auth_config_secret_arn" {
  type        = string
  description = "Secrets Manager ARN (plain, no JSON key) of auth.conf: the password variables the permissions name (NATS_PASSWORD_EDGE, NATS_PASSWORD_WORKER_<GROUP>), plain or bcrypt, e.g. `NATS_PASSWORD_EDGE: \"$2a$11$...\"`."
}

variable "permissions" {
  type        = string
  description = "The NATS users and permissions: the output of `edge nats-auth --worker-group ... --passwords-include auth.conf`. Kept in a Secrets Manager secret this module creates (it names password variables, never a password) and fetched with the other secrets, so a change reaches the nodes within the hour (or at once with nats-fetch-secrets) and reloads without disconnects."

  validation {
    condition     = strcontains(var.permissions, "include \"auth.conf\"\nauthorization {")
    error_message = "permissions must be `edge nats-auth ... --passwords-include auth.conf` output: an authorization block that includes auth.conf (the password variables) first."
  }
}

variable "secrets_kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys that encrypt those secrets (kms:Decrypt via Secrets Manager only)."
  default     = []
}

variable "install_ssm_agent" {
  type        = bool
  description = "Install the SSM agent (not in Debian's archive) from the region's AWS S3 bucket at boot and grant SSM core permissions, for shell access without SSH."
  default     = true
}

variable "install_cloudwatch_agent" {
  type        = bool
  description = "Install the CloudWatch agent (not in Debian's archive) from the region's AWS S3 bucket at boot: it ships nats-server's log to the nodes' log group and reports memory and JetStream disk use (namespace CWAgent)."
  default     = true
}

variable "disk_alarm_percent" {
  type        = number
  description = "Alarm when a node's JetStream volume is fuller than this, in percent (needs the CloudWatch agent)."
  default     = 75

  validation {
    condition     = var.disk_alarm_percent > 0 && var.disk_alarm_percent < 100
    error_message = "disk_alarm_percent must be between 0 and 100."
  }
}

variable "alarm_actions" {
  type        = list(string)
  description = "SNS topic ARNs notified when an alarm fires or clears (empty: the alarms only show in the console)."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the nodes' CloudWatch log group."
  default     = 365
}

variable "log_kms_key_arn" {
  type        = string
  description = "Optional KMS key ARN that encrypts the log group."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
