output "node_role_name" {
  description = "Name of the Karpenter node role (EC2NodeClass spec.role)."
  value       = aws_iam_role.node.name
}

output "node_role_arn" {
  description = "ARN of the Karpenter node role."
  value       = aws_iam_role.node.arn
}

output "queue_name" {
  description = "Name of the interruption queue (Karpenter settings.interruptionQueue)."
  value       = aws_sqs_queue.interruption.name
}

output "queue_arn" {
  description = "ARN of the interruption queue."
  value       = aws_sqs_queue.interruption.arn
}

output "queue_url" {
  description = "URL of the interruption queue."
  value       = aws_sqs_queue.interruption.url
}
