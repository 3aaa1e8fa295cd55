variable "cluster_name" {
  description = "Name of the EKS cluster whose nodes Karpenter launches."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a lowercase DNS label."
  }
}

variable "node_role_name" {
  description = "Name of the IAM role of the nodes Karpenter launches (referenced by the EC2NodeClass)."
  type        = string

  validation {
    condition     = length(var.node_role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.node_role_name))
    error_message = "node_role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "queue_name" {
  description = "Name of the SQS queue Karpenter reads interruption events from."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,80}$", var.queue_name))
    error_message = "queue_name must be 1-80 letters, digits, _ or -."
  }
}

variable "event_rule_names" {
  description = "Names of the EventBridge rules forwarding interruption events to the queue."
  type = object({
    spot_interruption     = string
    rebalance             = string
    instance_state_change = string
    scheduled_change      = string
    capacity_reservation  = string
  })

  validation {
    condition = alltrue([
      for n in values(var.event_rule_names) : can(regex("^[a-zA-Z0-9._-]{1,64}$", n))
    ])
    error_message = "event rule names must be 1-64 letters, digits, . _ or -."
  }
}
