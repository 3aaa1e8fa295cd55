//! The cluster's network, as Terraform's network module builds it: NAT
//! gateways and their elastic IPs, the internet gateway, route tables,
//! subnets, flow logs and the VPC. Each is listed whole and kept only with
//! both of Terrace's tags: a region holds few of each, and EC2's tag
//! filters are not implemented alike for every kind by emulators.
//!
//! Deletes follow EC2's dependencies: a NAT gateway must be gone before its
//! address can be released, an internet gateway detached before it is
//! deleted, a route table disassociated (a VPC's main table is never
//! touched: it goes with the VPC), subnets empty before the VPC goes.

use aws_sdk_ec2::types::Tag;

use super::api::{Api, Attempt, step};
use super::{Item, Kind, TeardownError};
use crate::aws::sdk_message;
use crate::model::tags::owned_by_terrace;

const DEPENDENCY: &[&str] = &["DependencyViolation"];

fn owned(tags: &[Tag], cluster: &str) -> bool {
    owned_by_terrace(
        tags.iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
        cluster,
    )
}

fn name(tags: &[Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// Every network resource of the cluster, in deletion order.
pub(crate) async fn list(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let (nats, addresses, gateways, tables, subnets, flow_logs, vpcs) = futures::try_join!(
        nat_gateways(api, cluster),
        addresses(api, cluster),
        internet_gateways(api, cluster),
        route_tables(api, cluster),
        subnets(api, cluster),
        flow_logs(api, cluster),
        vpcs(api, cluster),
    )?;
    Ok([nats, addresses, gateways, tables, subnets, flow_logs, vpcs].concat())
}

async fn nat_gateways(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_nat_gateways().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeNatGateways");
        let page = page.map_err(|e| api.error("list NAT gateways", sdk_message(&e)))?;
        for nat in page.nat_gateways() {
            let gone = nat
                .state()
                .is_some_and(|s| matches!(s.as_str(), "deleted" | "failed"));
            if !gone
                && owned(nat.tags(), cluster)
                && let Some(id) = nat.nat_gateway_id()
            {
                items.push(Item::new(Kind::NatGateway, id, name(nat.tags())));
            }
        }
    }
    Ok(items)
}

async fn addresses(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    api.hit("ec2:DescribeAddresses");
    let out = api
        .ec2
        .describe_addresses()
        .send()
        .await
        .map_err(|e| api.error("list elastic IPs", sdk_message(&e)))?;
    Ok(out
        .addresses()
        .iter()
        .filter(|a| owned(a.tags(), cluster))
        .filter_map(|a| {
            a.allocation_id()
                .map(|id| Item::new(Kind::ElasticIp, id, a.public_ip().map(str::to_string)))
        })
        .collect())
}

async fn internet_gateways(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_internet_gateways().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeInternetGateways");
        let page = page.map_err(|e| api.error("list internet gateways", sdk_message(&e)))?;
        for igw in page.internet_gateways() {
            if owned(igw.tags(), cluster)
                && let Some(id) = igw.internet_gateway_id()
            {
                items.push(Item::new(Kind::InternetGateway, id, name(igw.tags())));
            }
        }
    }
    Ok(items)
}

async fn route_tables(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_route_tables().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeRouteTables");
        let page = page.map_err(|e| api.error("list route tables", sdk_message(&e)))?;
        for table in page.route_tables() {
            let main = table.associations().iter().any(|a| a.main() == Some(true));
            if !main
                && owned(table.tags(), cluster)
                && let Some(id) = table.route_table_id()
            {
                items.push(Item::new(Kind::RouteTable, id, name(table.tags())));
            }
        }
    }
    Ok(items)
}

async fn subnets(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_subnets().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeSubnets");
        let page = page.map_err(|e| api.error("list subnets", sdk_message(&e)))?;
        for subnet in page.subnets() {
            if owned(subnet.tags(), cluster)
                && let Some(id) = subnet.subnet_id()
            {
                items.push(Item::new(Kind::Subnet, id, name(subnet.tags())));
            }
        }
    }
    Ok(items)
}

async fn flow_logs(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_flow_logs().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeFlowLogs");
        let page = page.map_err(|e| api.error("list flow logs", sdk_message(&e)))?;
        for log in page.flow_logs() {
            if owned(log.tags(), cluster)
                && let Some(id) = log.flow_log_id()
            {
                items.push(Item::new(
                    Kind::FlowLog,
                    id,
                    log.resource_id().map(str::to_string),
                ));
            }
        }
    }
    Ok(items)
}

async fn vpcs(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api.ec2.describe_vpcs().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeVpcs");
        let page = page.map_err(|e| api.error("list VPCs", sdk_message(&e)))?;
        for vpc in page.vpcs() {
            if owned(vpc.tags(), cluster)
                && let Some(id) = vpc.vpc_id()
            {
                items.push(Item::new(Kind::Vpc, id, name(vpc.tags())));
            }
        }
    }
    Ok(items)
}

pub(crate) async fn delete(api: &Api, item: Item) -> Attempt {
    let item = &item;
    match item.kind {
        Kind::NatGateway => {
            api.hit("ec2:DeleteNatGateway");
            let result = api
                .ec2
                .delete_nat_gateway()
                .nat_gateway_id(&item.id)
                .send()
                .await;
            Attempt::of(result, |c| c.contains("NotFound"), &[])
        }
        // Released only once its NAT gateway is gone; until then EC2 says
        // it is in use.
        Kind::ElasticIp => {
            api.hit("ec2:ReleaseAddress");
            let result = api
                .ec2
                .release_address()
                .allocation_id(&item.id)
                .send()
                .await;
            Attempt::of(
                result,
                |c| c == "InvalidAllocationID.NotFound",
                &["InvalidIPAddress.InUse", "DependencyViolation"],
            )
        }
        Kind::InternetGateway => delete_internet_gateway(api, &item.id).await,
        Kind::RouteTable => delete_route_table(api, &item.id).await,
        Kind::Subnet => {
            api.hit("ec2:DeleteSubnet");
            let result = api.ec2.delete_subnet().subnet_id(&item.id).send().await;
            Attempt::of(result, |c| c == "InvalidSubnetID.NotFound", DEPENDENCY)
        }
        Kind::FlowLog => {
            api.hit("ec2:DeleteFlowLogs");
            match api
                .ec2
                .delete_flow_logs()
                .flow_log_ids(&item.id)
                .send()
                .await
            {
                Ok(out) => match out.unsuccessful().first().and_then(|u| u.error()) {
                    Some(e) if e.code().is_some_and(|c| c.contains("NotFound")) => Attempt::Done,
                    Some(e) => Attempt::Failed(format!(
                        "{}: {}",
                        e.code().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    )),
                    None => Attempt::Done,
                },
                Err(e) => Attempt::of(Err::<(), _>(e), |c| c.contains("NotFound"), &[]),
            }
        }
        _ => {
            api.hit("ec2:DeleteVpc");
            let result = api.ec2.delete_vpc().vpc_id(&item.id).send().await;
            Attempt::of(result, |c| c == "InvalidVpcID.NotFound", DEPENDENCY)
        }
    }
}

async fn delete_internet_gateway(api: &Api, id: &str) -> Attempt {
    let gone = |c: &str| c == "InvalidInternetGatewayID.NotFound";
    api.hit("ec2:DescribeInternetGateways");
    let described = api
        .ec2
        .describe_internet_gateways()
        .internet_gateway_ids(id)
        .send()
        .await;
    let vpcs: Vec<String> = match described {
        Ok(out) => out
            .internet_gateways()
            .iter()
            .flat_map(|g| g.attachments())
            .filter_map(|a| a.vpc_id().map(str::to_string))
            .collect(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for vpc in vpcs {
        api.hit("ec2:DetachInternetGateway");
        let result = api
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(&vpc)
            .send()
            .await;
        // Detaching waits for the VPC's public addresses (NAT, load
        // balancers) to be released: EC2 says DependencyViolation meanwhile.
        step!(Attempt::of(
            result,
            |c| gone(c) || c == "Gateway.NotAttached",
            DEPENDENCY
        ));
    }
    api.hit("ec2:DeleteInternetGateway");
    let result = api
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(id)
        .send()
        .await;
    Attempt::of(result, gone, DEPENDENCY)
}

async fn delete_route_table(api: &Api, id: &str) -> Attempt {
    let gone = |c: &str| c == "InvalidRouteTableID.NotFound";
    api.hit("ec2:DescribeRouteTables");
    let described = api
        .ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await;
    let associations: Vec<String> = match described {
        Ok(out) => {
            let all: Vec<_> = out
                .route_tables()
                .iter()
                .flat_map(|t| t.associations())
                .collect();
            // Became a main table since it was listed: it goes with the VPC.
            if all.iter().any(|a| a.main() == Some(true)) {
                return Attempt::Done;
            }
            all.iter()
                .filter_map(|a| a.route_table_association_id().map(str::to_string))
                .collect()
        }
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for association in associations {
        api.hit("ec2:DisassociateRouteTable");
        let result = api
            .ec2
            .disassociate_route_table()
            .association_id(&association)
            .send()
            .await;
        step!(Attempt::of(
            result,
            |c| c == "InvalidAssociationID.NotFound",
            &[]
        ));
    }
    api.hit("ec2:DeleteRouteTable");
    let result = api.ec2.delete_route_table().route_table_id(id).send().await;
    Attempt::of(result, gone, DEPENDENCY)
}

/// Which of the NAT gateways `ids` are not deleted yet: their addresses
/// stay in use, and their interfaces in the subnets, until they are.
pub(crate) async fn nat_gateways_remaining(
    api: &Api,
    ids: &[String],
) -> Result<Vec<String>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    api.hit("ec2:DescribeNatGateways");
    let out = api
        .ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_message(&e))?;
    Ok(out
        .nat_gateways()
        .iter()
        .filter(|n| {
            !n.state()
                .is_some_and(|s| matches!(s.as_str(), "deleted" | "failed"))
        })
        .filter_map(|n| n.nat_gateway_id().map(str::to_string))
        .collect())
}
