data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  log_group_arns = [
    for name in var.log_group_names :
    "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${name}"
  ]
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy, not an identity policy: "*" as resource means only the key it is attached to, and the account-root statement is the standard delegation that lets IAM policies govern the key.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: "*" as resource means only this key. Write actions go to the account root (delegating to IAM) and to CloudWatch Logs restricted by the log-group encryption context.
  #checkov:skip=CKV_AWS_356:A KMS key policy cannot name its own key ARN (it does not exist yet); "*" in a key policy is scoped to this key alone.
  # Delegating to the account lets IAM policies (the EKS cluster role, operators)
  # grant use of the key; without it the key could become unmanageable.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs calls KMS as a service principal, not through an IAM role,
  # so it can only be allowed here; the encryption context pins it to our groups.
  dynamic "statement" {
    for_each = length(local.log_group_arns) > 0 ? [1] : []

    content {
      sid = "CloudWatchLogsEncryption"
      actions = [
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
      ]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${var.region}.${data.aws_partition.current.dns_suffix}"]
      }

      condition {
        test     = "ArnEquals"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = local.log_group_arns
      }
    }
  }
}

resource "aws_kms_key" "this" {
  description         = var.description
  enable_key_rotation = true
  # The key only protects data of a disposable cluster; a short window keeps
  # rebuilt regions from accumulating keys pending deletion.
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = var.alias_name
  target_key_id = aws_kms_key.this.key_id
}
