variable "cluster_name" {
  description = "EKS cluster name; used in subnet discovery tags and Name tags."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a lowercase DNS label."
  }
}

variable "cidr" {
  description = "IPv4 CIDR of the VPC, between /16 and /20."
  type        = string

  validation {
    condition = (
      can(cidrhost(var.cidr, 0)) &&
      try(tonumber(split("/", var.cidr)[1]) >= 16 && tonumber(split("/", var.cidr)[1]) <= 20, false) &&
      try(cidrhost(var.cidr, 0) == split("/", var.cidr)[0], false)
    )
    error_message = "cidr must be a network address with a prefix between /16 and /20, e.g. 10.0.0.0/16."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets over (2-6)."
  type        = number

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number between 2 and 6."
  }
}

variable "excluded_zone_ids" {
  description = "Availability zone IDs never used (EKS refuses control-plane subnets there); by ID because the name behind an ID differs per account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.excluded_zone_ids : can(regex("^[a-z]+[0-9]+-az[0-9]+$", id))])
    error_message = "excluded_zone_ids must be zone IDs like use1-az3."
  }
}

variable "nat" {
  description = "NAT layout: \"single\" (one NAT gateway, cheaper) or \"per-az\" (one per AZ, survives an AZ outage)."
  type        = string

  validation {
    condition     = contains(["single", "per-az"], var.nat)
    error_message = "nat must be \"single\" or \"per-az\"."
  }
}

variable "flow_log_group_name" {
  description = "Name of the CloudWatch log group receiving the VPC flow logs."
  type        = string
}

variable "flow_log_role_name" {
  description = "Name of the IAM role VPC Flow Logs assumes to write to the log group."
  type        = string

  validation {
    condition     = length(var.flow_log_role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.flow_log_role_name))
    error_message = "flow_log_role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "log_retention_days" {
  description = "Retention of the flow log group in days (a value CloudWatch Logs accepts)."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "ARN of the KMS key encrypting the flow log group; its policy must allow CloudWatch Logs for this group."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}
