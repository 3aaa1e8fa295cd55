variable "zones" {
  description = "Public Route53 hosted zones (by name) to issue a certificate for: the zone and its wildcard."
  type        = list(string)

  validation {
    condition     = length(var.zones) == length(distinct(var.zones))
    error_message = "Each zone may be listed once."
  }
}

variable "validation_timeout" {
  description = "How long Terraform waits for ACM to issue each certificate once its validation record exists."
  type        = string
  default     = "45m"
}
