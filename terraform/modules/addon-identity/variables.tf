variable "cluster_name" {
  description = "Name of the EKS cluster the service account lives in."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a lowercase DNS label."
  }
}

variable "role_name" {
  description = "Name of the IAM role the addon's pods receive."
  type        = string

  validation {
    condition     = length(var.role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.role_name))
    error_message = "role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the addon's service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a Kubernetes namespace name (lowercase DNS label)."
  }
}

variable "service_account" {
  description = "Name of the addon's Kubernetes service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a Kubernetes object name (lowercase DNS subdomain)."
  }
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the addon's least-privilege permissions."
  type        = string

  validation {
    condition     = can(jsondecode(var.policy_json).Statement)
    error_message = "policy_json must be a JSON IAM policy document with a Statement."
  }
}
