# Edge in a small new VPC built from plain resources (no registry modules): three AZs, a public
# and a private subnet in each, one NAT gateway (cheapest; one per AZ for AZ-independent
# egress), VPC flow logs to the log bucket.

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

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the new VPC (a /16 is split into /20 subnets)."
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  type        = list(string)
  description = "Three availability zones of the region (one public and one private subnet, one NATS node each)."
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "image" {
  type        = string
  description = "Edge image URI."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the public hostname."
}

variable "access_logs_bucket" {
  type        = string
  description = "S3 bucket for ALB access logs and VPC flow logs (policy allows ELB and log delivery)."
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

locals {
  azs = var.availability_zones
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "edge" }
}

# No rules: nothing may use the default security group.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = "arn:aws:s3:::${var.access_logs_bucket}/vpc-flow-logs/"
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "edge" }
}

resource "aws_subnet" "public" {
  count                   = length(local.azs)
  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "edge-public-${local.azs[count.index]}" }
}

resource "aws_subnet" "private" {
  count             = length(local.azs)
  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index + 8)
  tags              = { Name = "edge-private-${local.azs[count.index]}" }
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "edge-nat" }
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = "edge" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "edge-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count          = length(local.azs)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "edge-private" }
}

resource "aws_route" "private_nat" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this.id
}

resource "aws_route_table_association" "private" {
  count          = length(local.azs)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

module "edge" {
  source = "../.."

  name               = "edge"
  vpc_id             = aws_vpc.this.id
  vpc_cidr           = aws_vpc.this.cidr_block
  public_subnet_ids  = aws_subnet.public[*].id
  private_subnet_ids = aws_subnet.private[*].id
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
      min_tasks = 1
      max_tasks = 4
    }
  }

  # Routes must exist before NATS nodes boot (apt, Secrets Manager) and tasks pull images.
  depends_on = [aws_route.private_nat, aws_route_table_association.private]
}

output "alb_dns_name" {
  description = "Alias the public hostname to this."
  value       = module.edge.alb_dns_name
}

output "vpc_id" {
  description = "ID of the new VPC."
  value       = aws_vpc.this.id
}
