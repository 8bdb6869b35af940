variable "name" {
  type        = string
  description = "Name prefix for the security groups."
}

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC the security groups belong to."
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC. Admin (9901) and NATS monitoring (8222) ports are open to it only."
}

variable "listen_port" {
  type        = number
  description = "Edge HTTPS port the ALB forwards to."
  default     = 8443
}

variable "admin_port" {
  type        = number
  description = "Admin/metrics port of edge and worker tasks (bearer-token protected, VPC only)."
  default     = 9901
}

variable "nats_client_port" {
  type        = number
  description = "NATS client port (TLS)."
  default     = 4222
}

variable "nats_cluster_port" {
  type        = number
  description = "NATS cluster route port (TLS)."
  default     = 6222
}

variable "nats_monitor_port" {
  type        = number
  description = "NATS HTTP monitoring port (/healthz, /varz)."
  default     = 8222
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
