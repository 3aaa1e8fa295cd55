# One DNS-validated certificate per public zone, for the zone and its
# wildcard, so every app host one level below the zone is served by the
# shared load balancer without a per-app certificate.

data "aws_route53_zone" "this" {
  for_each = toset(var.zones)

  name         = each.value
  private_zone = false
}

resource "aws_acm_certificate" "this" {
  #checkov:skip=CKV2_AWS_71:The wildcard is the point: one certificate per zone covers every app host below it on the shared ALB, so no app needs its own certificate; the apex is named too.
  for_each = toset(var.zones)

  domain_name               = each.value
  subject_alternative_names = ["*.${each.value}"]
  validation_method         = "DNS"

  # A changed zone list or key gets its new certificate before the old one
  # is deleted: a listener never points at a deleted certificate.
  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # ACM asks for the same CNAME for a name and its wildcard, so one record
  # per zone validates both: the apex's.
  validation = {
    for zone in var.zones : zone => one([
      for option in aws_acm_certificate.this[zone].domain_validation_options : option
      if option.domain_name == zone
    ])
  }
}

resource "aws_route53_record" "validation" {
  for_each = toset(var.zones)

  zone_id = data.aws_route53_zone.this[each.value].zone_id
  name    = local.validation[each.value].resource_record_name
  type    = local.validation[each.value].resource_record_type
  records = [local.validation[each.value].resource_record_value]
  ttl     = 300
  # The record's name depends only on the account and the domain: a cluster
  # of the same account in another region asks for the very same record.
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  for_each = toset(var.zones)

  certificate_arn         = aws_acm_certificate.this[each.value].arn
  validation_record_fqdns = [aws_route53_record.validation[each.value].fqdn]

  timeouts {
    create = var.validation_timeout
  }
}
