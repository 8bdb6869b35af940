output "client_urls" {
  description = "Client URLs of the three nodes (tls://nats-N.<namespace>:4222)."
  value       = local.client_urls
}

output "route_urls" {
  description = "Cluster route URLs of the three nodes (tls://nats-N.<namespace>:6222)."
  value       = local.route_urls
}

output "health_urls" {
  description = "Health endpoints (VPC only): 200 when the node serves and JetStream is enabled."
  value       = local.health_urls
}

output "namespace_name" {
  description = "Cloud Map private DNS namespace of the nodes."
  value       = aws_service_discovery_private_dns_namespace.this.name
}

output "namespace_id" {
  description = "Cloud Map namespace ID."
  value       = aws_service_discovery_private_dns_namespace.this.id
}

output "instance_ids" {
  description = "EC2 instance IDs of nats-0, nats-1, nats-2 (SSM targets)."
  value       = aws_instance.node[*].id
}

output "volume_ids" {
  description = "JetStream EBS volume IDs of nats-0, nats-1, nats-2 (snapshot these)."
  value       = aws_ebs_volume.jetstream[*].id
}

output "node_role_arn" {
  description = "IAM role of the NATS instances."
  value       = aws_iam_role.node.arn
}
