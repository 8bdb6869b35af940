output "service_name" {
  description = "Name of the worker group's ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the worker task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the worker tasks."
  value       = module.iam.log_group_name
}
