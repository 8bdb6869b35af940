output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch dimension, autoscaling resource label)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB; point the public record (alias) here."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone ID of the ALB, for alias records."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "ARN of the edge target group."
  value       = aws_lb_target_group.edge.arn
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the edge target group (autoscaling resource label)."
  value       = aws_lb_target_group.edge.arn_suffix
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener (add extra certificates or rules to it)."
  value       = aws_lb_listener.https.arn
}
