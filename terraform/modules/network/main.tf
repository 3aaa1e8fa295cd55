data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# Opt-in zones (Local Zones, Wavelength) lack EKS and NAT support, so only the
# region's standard zones are candidates.
#
# Zone IDs EKS refuses are left out. This does not move an existing cluster's
# subnets: EKS would have refused to create a cluster with a subnet in one of
# them, so for every cluster that exists the first az_count names are the same
# with or without the exclusion.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Zones are discovered so a region alone describes a cluster (no per-region zone list to maintain); only the first az_count eligible zones by name are used (zone IDs EKS refuses excluded), so a zone AWS adds later (a new letter, sorted last) does not change the selection.
  state            = "available"
  exclude_zone_ids = var.excluded_zone_ids

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, min(var.az_count, length(data.aws_availability_zones.available.names)))

  # The VPC is cut in eighths: eighths 0-5 are one private subnet per AZ (pods
  # take an IP each under the VPC CNI, so these must be large), eighth 6 is
  # cut again in eighths for the public subnets (only load balancers and NAT
  # gateways live there), eighth 7 stays free for later use. A /16 gives /19
  # private and /22 public subnets, a /20 still gives /23 and /26.
  private_cidrs = [for i in range(length(local.azs)) : cidrsubnet(var.cidr, 3, i)]
  public_cidrs  = [for i in range(length(local.azs)) : cidrsubnet(cidrsubnet(var.cidr, 3, 6), 3, i)]

  nat_count = var.nat == "per-az" ? length(local.azs) : 1
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_12:terrace cluster up revokes every rule of this VPC's default security group right after apply (aws_default_security_group is outside the provider schema this stack is checked against). Nothing Terrace creates is attached to it: nodes use the EKS cluster security group and controllers create their own groups.
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.cluster_name
  }

  lifecycle {
    precondition {
      condition     = length(data.aws_availability_zones.available.names) >= var.az_count
      error_message = "The region has fewer standard availability zones that EKS supports than az_count."
    }
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = var.cluster_name
  }
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.public_cidrs[count.index]
  # Nothing is launched here that needs a public address by default; NAT
  # gateways get EIPs and load balancers are assigned addresses by ELB.
  map_public_ip_on_launch = false

  tags = {
    Name                                        = "${var.cluster_name}-public-${local.azs[count.index]}"
    "kubernetes.io/cluster/${var.cluster_name}" = "owned"
    "kubernetes.io/role/elb"                    = "1"
  }
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = local.private_cidrs[count.index]
  map_public_ip_on_launch = false

  tags = {
    Name                                        = "${var.cluster_name}-private-${local.azs[count.index]}"
    "kubernetes.io/cluster/${var.cluster_name}" = "owned"
    "kubernetes.io/role/internal-elb"           = "1"
    "karpenter.sh/discovery"                    = var.cluster_name
  }
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"

  tags = {
    Name = "${var.cluster_name}-nat-${local.azs[count.index]}"
  }

  # An EIP in a VPC without an internet gateway cannot be associated.
  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = {
    Name = "${var.cluster_name}-${local.azs[count.index]}"
  }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.cluster_name}-public"
  }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = length(local.azs)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# One private route table per AZ even with a single NAT gateway, so switching
# to per-AZ NAT only changes routes, never subnet associations.
resource "aws_route_table" "private" {
  count = length(local.azs)

  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.cluster_name}-private-${local.azs[count.index]}"
  }
}

resource "aws_route" "private_nat" {
  count = length(local.azs)

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.nat == "per-az" ? count.index : 0].id
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# Flow logs

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = var.flow_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Confused-deputy protection: only flow logs of this account may use the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ec2:*:${data.aws_caller_identity.current.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = var.flow_log_role_name
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid = "WriteFlowLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }

  # DescribeLogGroups takes no resource-level permission (the service
  # authorization reference names no resource type for it, and parliament,
  # built from that reference, requires "*"): a log-group ARN would grant
  # nothing. It returns log group names and settings, no log data.
  statement {
    sid       = "FindLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = var.flow_log_role_name
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn

  tags = {
    Name = var.cluster_name
  }

  # Flow logs validate the role's permissions at creation time.
  depends_on = [aws_iam_role_policy.flow_logs]
}
