variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a lowercase DNS label of at most 100 characters."
  }
}

variable "node_subnet_ids" {
  description = "Subnets of the system node group: the private subnets, passed once they route to the internet so nodes can join."
  type        = list(string)

  validation {
    condition     = length(var.node_subnet_ids) >= 1
    error_message = "node_subnet_ids needs at least one subnet."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the system node group, e.g. \"1.33\"."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.33\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the control plane ENIs and the system node group, at least two AZs."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public" {
  description = "Whether the Kubernetes API endpoint is reachable from the internet (still IAM-authenticated and limited to endpoint_public_cidrs)."
  type        = bool
}

variable "endpoint_public_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint; ignored when endpoint_public is false."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.endpoint_public_cidrs : can(cidrhost(c, 0))])
    error_message = "endpoint_public_cidrs must be IPv4 CIDRs."
  }
}

variable "kms_key_arn" {
  description = "KMS key for envelope encryption of Kubernetes secrets and for the control-plane log group."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "log_group_name" {
  description = "Control-plane log group; EKS writes to /aws/eks/<cluster>/cluster, so this must be that name."
  type        = string

  validation {
    condition     = can(regex("^/aws/eks/.+/cluster$", var.log_group_name))
    error_message = "log_group_name must be /aws/eks/<cluster_name>/cluster, the group EKS writes to."
  }
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group in days (a value CloudWatch Logs accepts)."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "cluster_role_name" {
  description = "Name of the IAM role the EKS control plane assumes."
  type        = string

  validation {
    condition     = length(var.cluster_role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.cluster_role_name))
    error_message = "cluster_role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "node_role_name" {
  description = "Name of the IAM role of the system node group's instances."
  type        = string

  validation {
    condition     = length(var.node_role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.node_role_name))
    error_message = "node_role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "node_group_name" {
  description = "Name of the system managed node group."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$", var.node_group_name))
    error_message = "node_group_name must be 1-63 letters, digits, _ or -, starting with a letter or digit."
  }
}

variable "launch_template_name" {
  description = "Name of the system node group's launch template."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9().\\/_-]{3,128}$", var.launch_template_name))
    error_message = "launch_template_name must be 3-128 characters of letters, digits, ( ) . / _ -."
  }
}

variable "instance_types" {
  description = "Instance types of the system node group, all of one CPU architecture."
  type        = list(string)

  validation {
    condition     = length(var.instance_types) > 0 && alltrue([for t in var.instance_types : can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", t))])
    error_message = "instance_types must be a non-empty list of EC2 instance types such as m7i.large."
  }
}

variable "ami_type" {
  description = "EKS AMI type matching the CPU architecture of instance_types (Terrace derives it and rejects mixed architectures)."
  type        = string

  validation {
    condition     = contains(["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD"], var.ami_type)
    error_message = "ami_type must be AL2023_x86_64_STANDARD or AL2023_ARM_64_STANDARD."
  }
}

variable "min_size" {
  description = "Minimum number of system nodes."
  type        = number

  validation {
    condition     = var.min_size >= 1
    error_message = "min_size must be at least 1: the cluster's controllers run on the system nodes."
  }
}

variable "max_size" {
  description = "Maximum number of system nodes."
  type        = number

  validation {
    condition     = var.max_size >= 1
    error_message = "max_size must be at least 1."
  }
}

variable "desired_size" {
  description = "Initial number of system nodes (later changes made by autoscalers are not reverted)."
  type        = number

  validation {
    condition     = var.desired_size >= var.min_size && var.desired_size <= var.max_size
    error_message = "desired_size must lie between min_size and max_size."
  }
}

variable "disk_size_gb" {
  description = "Size of each system node's encrypted gp3 root volume in GiB."
  type        = number

  validation {
    condition     = var.disk_size_gb >= 20 && var.disk_size_gb <= 16384
    error_message = "disk_size_gb must be between 20 and 16384."
  }
}

variable "ebs_csi_role_name" {
  description = "Name of the IAM role the EBS CSI controller receives through EKS Pod Identity."
  type        = string

  validation {
    condition     = length(var.ebs_csi_role_name) <= 64 && can(regex("^[\\w+=,.@-]+$", var.ebs_csi_role_name))
    error_message = "ebs_csi_role_name must be a valid IAM role name of at most 64 characters."
  }
}

variable "system_taint_key" {
  description = "Key of the NoSchedule taint that keeps ordinary workloads off the system nodes."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", var.system_taint_key))
    error_message = "system_taint_key must be a valid Kubernetes taint key."
  }
}

variable "system_taint_value" {
  description = "Value of the system nodes' NoSchedule taint."
  type        = string

  validation {
    condition     = can(regex("^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", var.system_taint_value))
    error_message = "system_taint_value must be a valid Kubernetes label value."
  }
}

variable "expires_at" {
  description = "When the janitor may remove the cluster (RFC 3339 UTC), set when it is built; null for no expiry."
  type        = string
  default     = null

  validation {
    condition     = var.expires_at == null || can(formatdate("YYYY", var.expires_at))
    error_message = "expires_at must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z."
  }
}

variable "addon_versions" {
  description = "Version of each EKS managed add-on by name (vpc-cni, coredns, ...): EKS's default for kubernetes_version, resolved by terrace up. An add-on missing here gets EKS's default when created and keeps its version after."
  type        = map(string)
  default     = {}
}
