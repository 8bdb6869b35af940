output "service_name" {
  description = "Name of the edge ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the edge task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the edge tasks."
  value       = module.iam.log_group_name
}

output "execution_role_arn" {
  description = "Execution role (image pull, logs, secrets) of the edge tasks."
  value       = module.iam.execution_role_arn
}

output "task_role_arn" {
  description = "Task role of the edge tasks."
  value       = module.iam.task_role_arn
}
