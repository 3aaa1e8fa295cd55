output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones used, in subnet order."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per AZ, in the order of azs."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per AZ, in the order of azs."
  value       = aws_subnet.private[*].id
}

output "routed_private_subnet_ids" {
  description = "The private subnets, available only once their route to the NAT gateway exists: nodes launched earlier could not pull images or reach AWS APIs."
  value       = aws_subnet.private[*].id

  depends_on = [aws_route.private_nat, aws_route_table_association.private]
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways (the cluster's egress addresses)."
  value       = aws_eip.nat[*].public_ip
}
