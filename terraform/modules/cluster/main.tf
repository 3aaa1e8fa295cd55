data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition

  # Controllers that must run before Karpenter adds capacity land on the
  # tainted system nodes, so their add-ons tolerate the taint explicitly
  # (setting tolerations replaces the add-on defaults, hence CriticalAddonsOnly).
  system_tolerations = [
    {
      key      = "CriticalAddonsOnly"
      operator = "Exists"
    },
    {
      key      = var.system_taint_key
      operator = "Equal"
      value    = var.system_taint_value
      effect   = "NoSchedule"
    },
  ]

  managed_policy_arn = "arn:${local.partition}:iam::aws:policy"

  # The add-on installs its controller in kube-system under this account.
  ebs_csi_service_account = "ebs-csi-controller-sa"
}

# Control-plane IAM role

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = var.cluster_role_name
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.managed_policy_arn}/AmazonEKSClusterPolicy"
}

# AmazonEKSClusterPolicy grants no KMS access; envelope encryption of secrets
# needs these on our key (the key policy delegates to IAM).
data "aws_iam_policy_document" "cluster_kms" {
  statement {
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ListGrants",
      "kms:DescribeKey",
    ]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "cluster_kms" {
  name   = var.cluster_role_name
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_kms.json
}

# Created ahead of the cluster so EKS does not create it unencrypted and
# without retention, and so destroy removes it after the cluster stops logging.
resource "aws_cloudwatch_log_group" "cluster" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_eks_cluster" "this" {
  #checkov:skip=CKV_AWS_39:A public API endpoint is an explicit configuration choice (endpoint_public) so operators and CI can reach disposable clusters without a VPN; every request is still authenticated by IAM through EKS access entries.
  #checkov:skip=CKV_AWS_38:The allowed source CIDRs are an explicit configuration choice (endpoint_public_cidrs); the endpoint only accepts IAM-authenticated requests, authorised through EKS access entries.
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  # Managed add-ons below install and own vpc-cni, kube-proxy and CoreDNS;
  # bootstrapping the unmanaged copies as well would leave two owners.
  bootstrap_self_managed_addons = false

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = var.kms_key_arn
    }
  }

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public
    public_access_cidrs     = var.endpoint_public ? var.endpoint_public_cidrs : null
  }

  tags = var.expires_at == null ? {} : { "terrace.dev/expires-at" = var.expires_at }

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_kms,
    aws_cloudwatch_log_group.cluster,
  ]

  # The expiry is fixed when the cluster is built: a later `up` renders a
  # new one from its own clock, which must not show as a change.
  lifecycle {
    ignore_changes = [tags["terrace.dev/expires-at"]]
  }
}

# default_tags cannot reach the security group EKS creates; Karpenter's
# EC2NodeClass selects it by discovery tag and teardown finds it by cluster tag.
resource "aws_ec2_tag" "cluster_sg" {
  for_each = {
    "karpenter.sh/discovery" = var.cluster_name
    "terrace.dev/cluster"    = var.cluster_name
  }

  resource_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  key         = each.key
  value       = each.value
}

# Managed add-ons run the version `up` resolved as EKS's default for the
# cluster's Kubernetes version (var.addon_versions), so a kubernetes_version
# change moves them too. Without one (an offline render), addon_version is
# left unset: EKS installs its default, and an existing add-on keeps its
# version.

# Add-ons nodes need to become Ready; installed before the node group.

resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  addon_version               = lookup(var.addon_versions, "vpc-cni", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
}

resource "aws_eks_addon" "kube_proxy" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "kube-proxy"
  addon_version               = lookup(var.addon_versions, "kube-proxy", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
}

resource "aws_eks_addon" "pod_identity_agent" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "eks-pod-identity-agent"
  addon_version               = lookup(var.addon_versions, "eks-pod-identity-agent", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
}

# System node group

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
    # vpc-cni runs with the node's credentials: it must assign pod IPs before
    # the Pod Identity agent can serve any credentials.
    "AmazonEKS_CNI_Policy",
    # Nodes only pull images; ReadOnly would also let them list and describe
    # every repository in the account.
    "AmazonEC2ContainerRegistryPullOnly",
    # Shell access through Session Manager instead of SSH keys and open ports.
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "${local.managed_policy_arn}/${each.value}"
}

resource "aws_launch_template" "system" {
  name                   = var.launch_template_name
  update_default_version = true

  # IMDSv2 only, and a hop limit of 1 so pods cannot borrow the node role:
  # workloads get AWS credentials from EKS Pod Identity instead.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # /dev/xvda is the root device of the EKS AL2023 AMIs.
  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.disk_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  # default_tags stop at the launch template; instances and volumes the node
  # group launches need the cluster tag for teardown's tag-based sweep.
  dynamic "tag_specifications" {
    for_each = toset(["instance", "volume", "network-interface"])

    content {
      resource_type = tag_specifications.value
      tags = {
        Name                  = var.node_group_name
        "terrace.dev/cluster" = var.cluster_name
      }
    }
  }
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = var.node_group_name
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.node_subnet_ids
  version         = var.kubernetes_version
  ami_type        = var.ami_type
  capacity_type   = "ON_DEMAND"
  instance_types  = var.instance_types

  launch_template {
    id      = aws_launch_template.system.id
    version = aws_launch_template.system.latest_version
  }

  scaling_config {
    min_size     = var.min_size
    max_size     = var.max_size
    desired_size = var.desired_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "terrace.dev/pool" = "system"
  }

  taint {
    key    = var.system_taint_key
    value  = var.system_taint_value
    effect = "NO_SCHEDULE"
  }

  lifecycle {
    # Scaling later belongs to the operator or an autoscaler, not to re-applies.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.vpc_cni,
    aws_eks_addon.kube_proxy,
    aws_eks_addon.pod_identity_agent,
  ]
}

# Add-ons whose pods need nodes to become healthy.

resource "aws_eks_addon" "coredns" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "coredns"
  addon_version               = lookup(var.addon_versions, "coredns", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  configuration_values = jsonencode({
    tolerations = local.system_tolerations
  })

  depends_on = [aws_eks_node_group.system]
}

# Resource metrics for HorizontalPodAutoscalers and `kubectl top`, so an
# app's autoscaling works on a fresh cluster. On the system nodes: they are
# the only nodes while Terraform waits for the add-on to become active.
resource "aws_eks_addon" "metrics_server" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "metrics-server"
  addon_version               = lookup(var.addon_versions, "metrics-server", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  configuration_values = jsonencode({
    tolerations = local.system_tolerations
  })

  depends_on = [aws_eks_node_group.system]
}

data "aws_iam_policy_document" "ebs_csi_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    # Session tags Pod Identity sets: only this cluster's EBS CSI controller.
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/eks-cluster-name"
      values   = [var.cluster_name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-namespace"
      values   = ["kube-system"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [local.ebs_csi_service_account]
    }
  }
}

resource "aws_iam_role" "ebs_csi" {
  name               = var.ebs_csi_role_name
  assume_role_policy = data.aws_iam_policy_document.ebs_csi_assume.json
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "${local.managed_policy_arn}/service-role/AmazonEBSCSIDriverPolicy"
}

resource "aws_eks_addon" "ebs_csi" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "aws-ebs-csi-driver"
  addon_version               = lookup(var.addon_versions, "aws-ebs-csi-driver", null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  pod_identity_association {
    role_arn        = aws_iam_role.ebs_csi.arn
    service_account = local.ebs_csi_service_account
  }

  # k8sTagClusterId makes the driver tag volumes kubernetes.io/cluster/<name>;
  # the extra tag lets teardown find every volume by the Terrace cluster tag.
  configuration_values = jsonencode({
    controller = {
      k8sTagClusterId = var.cluster_name
      extraVolumeTags = {
        "terrace.dev/cluster" = var.cluster_name
      }
      tolerations = local.system_tolerations
    }
    # EKS no longer marks any StorageClass default, so a PersistentVolumeClaim
    # without a class would stay Pending; the driver's own default class is gp3.
    defaultStorageClass = {
      enabled = true
    }
  })

  depends_on = [
    aws_eks_node_group.system,
    aws_iam_role_policy_attachment.ebs_csi,
  ]
}
