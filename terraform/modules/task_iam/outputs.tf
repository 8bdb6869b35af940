output "log_group_name" {
  description = "CloudWatch log group of the tasks."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "Execution role (image pull, logs, secrets)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Task role (no AWS permissions unless ECS Exec is enabled)."
  value       = aws_iam_role.task.arn
}
