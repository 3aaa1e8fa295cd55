data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  # The events Karpenter acts on: it drains a node before EC2 takes it away.
  events = {
    spot_interruption = {
      source      = "aws.ec2"
      detail_type = "EC2 Spot Instance Interruption Warning"
    }
    rebalance = {
      source      = "aws.ec2"
      detail_type = "EC2 Instance Rebalance Recommendation"
    }
    instance_state_change = {
      source      = "aws.ec2"
      detail_type = "EC2 Instance State-change Notification"
    }
    scheduled_change = {
      source      = "aws.health"
      detail_type = "AWS Health Event"
    }
    capacity_reservation = {
      source      = "aws.ec2"
      detail_type = "EC2 Capacity Reservation Instance Interruption Warning"
    }
  }
}

# Node role

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = var.node_role_name
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    # Nodes only pull images; ReadOnly would also let them list and describe
    # every repository in the account.
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

# With authentication_mode = API there is no aws-auth ConfigMap; this entry is
# what lets kubelets on Karpenter nodes join the cluster.
resource "aws_eks_access_entry" "node" {
  cluster_name  = var.cluster_name
  principal_arn = aws_iam_role.node.arn
  type          = "EC2_LINUX"
}

# Interruption queue

resource "aws_sqs_queue" "interruption" {
  name = var.queue_name
  # Interruption notices are worthless after a few minutes: a Spot warning
  # gives two, so older messages would only trigger stale drains.
  message_retention_seconds = 300
  # SSE-SQS rather than a customer key: EventBridge can publish to it without
  # a key policy grant, and the messages are public EC2 event metadata.
  sqs_managed_sse_enabled = true
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "EventBridgeAndSqsSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.interruption.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "sqs.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.interruption.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "interruption" {
  queue_url = aws_sqs_queue.interruption.id
  policy    = data.aws_iam_policy_document.queue.json
}

resource "aws_cloudwatch_event_rule" "interruption" {
  for_each = local.events

  name        = var.event_rule_names[each.key]
  description = "Karpenter interruption handling for ${var.cluster_name}: ${each.value.detail_type}"
  event_pattern = jsonencode({
    source      = [each.value.source]
    detail-type = [each.value.detail_type]
  })
}

resource "aws_cloudwatch_event_target" "interruption" {
  for_each = local.events

  rule = aws_cloudwatch_event_rule.interruption[each.key].name
  arn  = aws_sqs_queue.interruption.arn
  # A fixed id makes PutTargets an overwrite: an apply killed after adding
  # the target but before recording it otherwise leaves a second target
  # under a random id, and the rule can then never be deleted by destroy.
  target_id = "karpenter-interruption"

  # Events delivered before the queue policy exists would be dropped.
  depends_on = [aws_sqs_queue_policy.interruption]
}
