output "certificate_arns" {
  description = "ARN of each zone's issued certificate, by zone name; known once ACM has issued it."
  value       = { for zone, validation in aws_acm_certificate_validation.this : zone => validation.certificate_arn }
}
