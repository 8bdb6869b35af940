output "alb_dns_name" {
  description = "DNS name of the public ALB (alias your hostname to it)."
  value       = module.alb.alb_dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone ID of the ALB, for alias records."
  value       = module.alb.alb_zone_id
}

output "alb_arn" {
  description = "ARN of the ALB."
  value       = module.alb.alb_arn
}

output "target_group_arn" {
  description = "ARN of the edge target group."
  value       = module.alb.target_group_arn
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "edge_service_name" {
  description = "Name of the edge ECS service."
  value       = module.edge.service_name
}

output "edge_log_group" {
  description = "CloudWatch log group of the edge tasks."
  value       = module.edge.log_group_name
}

output "worker_service_names" {
  description = "ECS service name of each worker group."
  value       = { for k, m in module.worker_group : k => m.service_name }
}

output "nats_client_urls" {
  description = "NATS client URLs (tls://) given to edge and workers."
  value       = module.nats.client_urls
}

output "nats_health_urls" {
  description = "NATS health endpoints (/healthz?js-enabled-only=true on 8222, VPC only)."
  value       = module.nats.health_urls
}

output "nats_instance_ids" {
  description = "EC2 instance IDs of nats-0, nats-1, nats-2."
  value       = module.nats.instance_ids
}

output "nats_volume_ids" {
  description = "JetStream EBS volume IDs of nats-0, nats-1, nats-2."
  value       = module.nats.volume_ids
}

output "security_group_ids" {
  description = "Security group IDs by role."
  value = {
    alb    = module.network.alb_security_group_id
    edge   = module.network.edge_security_group_id
    worker = module.network.worker_security_group_id
    nats   = module.network.nats_security_group_id
  }
}
