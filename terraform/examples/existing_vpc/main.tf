# Edge in a VPC you already have: give its ID and subnets, the ALB certificate, the log bucket
# and the Secrets Manager ARNs.
#
#   terraform init && terraform apply -var-file=prod.tfvars

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region."
  default     = "us-east-1"
}

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets (two or more AZs) for the ALB."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets with NAT egress, three AZs (one NATS node each)."
}

variable "image" {
  type        = string
  description = "Edge image URI, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/edge:1.4.2."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the public hostname."
}

variable "access_logs_bucket" {
  type        = string
  description = "S3 bucket for ALB access logs (policy allows ELB log delivery)."
}

variable "secret_arns" {
  type = object({
    admin_token           = string
    llm_api_keys          = string
    tls_cert              = string
    tls_key               = string
    nats_ca               = string
    nats_edge_password    = string
    nats_worker_passwords = map(string) # by worker group
    nats_signing_keys     = string
    nats_server_cert      = string
    nats_server_key       = string
    nats_auth_config      = string
  })
  description = "Secrets Manager ARNs; see the root README, \"Secrets reach the container\"."
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Service = "edge"
    }
  }
}

data "aws_vpc" "this" {
  id = var.vpc_id

  lifecycle {
    # Cloud Map's private DNS names (the NATS nodes) resolve only in a VPC with both turned on.
    postcondition {
      condition     = self.enable_dns_support && self.enable_dns_hostnames
      error_message = "The VPC needs DNS support and DNS hostnames enabled for the NATS nodes' Cloud Map names."
    }
  }
}

module "edge" {
  source = "../.."

  name               = "edge"
  vpc_id             = var.vpc_id
  vpc_cidr           = data.aws_vpc.this.cidr_block
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  image              = var.image
  certificate_arn    = var.certificate_arn
  access_logs_bucket = var.access_logs_bucket

  admin_token_secret_arn           = var.secret_arns.admin_token
  llm_api_keys_secret_arn          = var.secret_arns.llm_api_keys
  tls_cert_secret_arn              = var.secret_arns.tls_cert
  tls_key_secret_arn               = var.secret_arns.tls_key
  nats_ca_secret_arn               = var.secret_arns.nats_ca
  nats_edge_password_secret_arn    = var.secret_arns.nats_edge_password
  nats_worker_password_secret_arns = var.secret_arns.nats_worker_passwords
  nats_signing_keys_secret_arn     = var.secret_arns.nats_signing_keys
  nats_server_cert_secret_arn      = var.secret_arns.nats_server_cert
  nats_server_key_secret_arn       = var.secret_arns.nats_server_key
  nats_auth_config_secret_arn      = var.secret_arns.nats_auth_config

  worker_groups = {
    ai = {
      services  = ["llm", "story"]
      min_tasks = 2
      max_tasks = 6
    }
  }
}

output "alb_dns_name" {
  description = "Alias the public hostname to this."
  value       = module.edge.alb_dns_name
}

output "nats_health_urls" {
  description = "NATS health endpoints (from inside the VPC)."
  value       = module.edge.nats_health_urls
}
