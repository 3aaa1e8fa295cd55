variable "alias_name" {
  description = "Alias of the key, including the \"alias/\" prefix."
  type        = string

  validation {
    condition     = can(regex("^alias/[a-zA-Z0-9/_-]{1,250}$", var.alias_name)) && !startswith(var.alias_name, "alias/aws/")
    error_message = "alias_name must look like \"alias/<name>\" (letters, digits, /, _ and -) and must not use the reserved alias/aws/ prefix."
  }
}

variable "description" {
  description = "Description of the key, shown in the KMS console."
  type        = string
}

variable "log_group_names" {
  description = "CloudWatch Logs log groups (names, not ARNs) that may encrypt with this key through the CloudWatch Logs service."
  type        = list(string)

  validation {
    condition     = alltrue([for n in var.log_group_names : can(regex("^[a-zA-Z0-9_/.#-]{1,512}$", n))])
    error_message = "log_group_names must be CloudWatch log group names (letters, digits, _ / . # -)."
  }
}

variable "region" {
  description = "Region the key and the log groups live in."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1."
  }
}
