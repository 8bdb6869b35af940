output "alb_security_group_id" {
  description = "Security group of the public ALB."
  value       = aws_security_group.alb.id
}

output "edge_security_group_id" {
  description = "Security group of the edge tasks."
  value       = aws_security_group.edge.id
}

output "worker_security_group_id" {
  description = "Security group of the worker tasks."
  value       = aws_security_group.worker.id
}

output "nats_security_group_id" {
  description = "Security group of the NATS nodes."
  value       = aws_security_group.nats.id
}
