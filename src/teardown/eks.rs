//! The EKS cluster and what lives in it: managed node groups, add-ons, pod
//! identity associations and access entries. Only a cluster carrying both
//! of Terrace's tags is looked into, and each of its parts only with both
//! tags too; the parts EKS made itself (the creator's access entry) go
//! with the cluster.

use super::api::{Api, Attempt, keep_owned};
use super::{Item, Kind, TeardownError};
use crate::aws::sdk_message;
use crate::model::tags::owned_by_terrace;

const GONE: &str = "ResourceNotFoundException";
/// A cluster with node groups, or a node group still being deleted.
const BUSY: &[&str] = &["ResourceInUseException"];

fn owned(tags: Option<&std::collections::HashMap<String, String>>, cluster: &str) -> bool {
    owned_by_terrace(
        tags.into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        cluster,
    )
}

/// `<cluster>/<part>`: the id of something that lives in an EKS cluster.
fn part_id(cluster: &str, part: &str) -> String {
    format!("{cluster}/{part}")
}

/// Items of `kind` for the parts named `names` of `cluster`.
fn parts(kind: Kind, cluster: &str, names: Vec<String>) -> Vec<Item> {
    Item::sorted(kind, names.iter().map(|name| part_id(cluster, name)))
}

fn gone(code: &str) -> bool {
    code == GONE
}

fn split(item: &Item) -> (&str, &str) {
    item.id.split_once('/').unwrap_or((item.id.as_str(), ""))
}

/// The cluster named `cluster` when it is Terrace's, then its parts.
pub(crate) async fn list(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    api.hit("eks:DescribeCluster");
    let described = match api.eks.describe_cluster().name(cluster).send().await {
        Ok(out) => out,
        Err(e) if super::api::code(&e).is_some_and(gone) => return Ok(Vec::new()),
        Err(e) => return Err(api.error("describe the EKS cluster", sdk_message(&e))),
    };
    let Some(found) = described.cluster() else {
        return Ok(Vec::new());
    };
    if !owned(found.tags(), cluster) {
        return Ok(Vec::new());
    }
    let (nodegroups, addons, associations, entries) = futures::try_join!(
        nodegroups(api, cluster),
        addons(api, cluster),
        pod_identity_associations(api, cluster),
        access_entries(api, cluster),
    )?;
    Ok([
        nodegroups,
        associations,
        entries,
        addons,
        vec![Item::new(Kind::EksCluster, cluster, None)],
    ]
    .concat())
}

async fn nodegroups(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut names = Vec::new();
    let mut pages = api
        .eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("eks:ListNodegroups");
        let page = page.map_err(|e| api.error("list EKS node groups", sdk_message(&e)))?;
        names.extend(page.nodegroups().iter().cloned());
    }
    let ours = keep_owned(
        api,
        "describe an EKS node group",
        names,
        gone,
        |name| async move {
            api.hit("eks:DescribeNodegroup");
            api.eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
        },
        |out| out.nodegroup().is_some_and(|n| owned(n.tags(), cluster)),
    )
    .await?;
    Ok(parts(Kind::NodeGroup, cluster, ours))
}

async fn addons(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut names = Vec::new();
    let mut pages = api
        .eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("eks:ListAddons");
        let page = page.map_err(|e| api.error("list EKS add-ons", sdk_message(&e)))?;
        names.extend(page.addons().iter().cloned());
    }
    let ours = keep_owned(
        api,
        "describe an EKS add-on",
        names,
        gone,
        |name| async move {
            api.hit("eks:DescribeAddon");
            api.eks
                .describe_addon()
                .cluster_name(cluster)
                .addon_name(name)
                .send()
                .await
        },
        |out| out.addon().is_some_and(|a| owned(a.tags(), cluster)),
    )
    .await?;
    Ok(parts(Kind::EksAddon, cluster, ours))
}

async fn pod_identity_associations(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut found = Vec::new();
    let mut pages = api
        .eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("eks:ListPodIdentityAssociations");
        let page =
            page.map_err(|e| api.error("list EKS pod identity associations", sdk_message(&e)))?;
        for a in page.associations() {
            if let Some(id) = a.association_id() {
                let name = match (a.namespace(), a.service_account()) {
                    (Some(ns), Some(sa)) => Some(format!("{ns}/{sa}")),
                    _ => None,
                };
                found.push((id.to_string(), name));
            }
        }
    }
    let ours = keep_owned(
        api,
        "describe an EKS pod identity association",
        found,
        gone,
        |(id, _)| async move {
            api.hit("eks:DescribePodIdentityAssociation");
            api.eks
                .describe_pod_identity_association()
                .cluster_name(cluster)
                .association_id(id)
                .send()
                .await
        },
        |out| out.association().is_some_and(|a| owned(a.tags(), cluster)),
    )
    .await?;
    let mut items: Vec<Item> = ours
        .into_iter()
        .map(|(id, name)| Item::new(Kind::PodIdentityAssociation, part_id(cluster, &id), name))
        .collect();
    items.sort();
    Ok(items)
}

async fn access_entries(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut principals = Vec::new();
    let mut pages = api
        .eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("eks:ListAccessEntries");
        let page = page.map_err(|e| api.error("list EKS access entries", sdk_message(&e)))?;
        principals.extend(page.access_entries().iter().cloned());
    }
    let ours = keep_owned(
        api,
        "describe an EKS access entry",
        principals,
        gone,
        |principal| async move {
            api.hit("eks:DescribeAccessEntry");
            api.eks
                .describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
                .await
        },
        |out| out.access_entry().is_some_and(|a| owned(a.tags(), cluster)),
    )
    .await?;
    Ok(parts(Kind::AccessEntry, cluster, ours))
}

pub(crate) async fn delete(api: &Api, item: Item) -> Attempt {
    let item = &item;
    let (cluster, part) = split(item);
    match item.kind {
        Kind::NodeGroup => {
            api.hit("eks:DeleteNodegroup");
            let result = api
                .eks
                .delete_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(part)
                .send()
                .await;
            Attempt::of(result, gone, BUSY)
        }
        Kind::EksAddon => {
            api.hit("eks:DeleteAddon");
            let result = api
                .eks
                .delete_addon()
                .cluster_name(cluster)
                .addon_name(part)
                .send()
                .await;
            Attempt::of(result, gone, BUSY)
        }
        Kind::PodIdentityAssociation => {
            api.hit("eks:DeletePodIdentityAssociation");
            let result = api
                .eks
                .delete_pod_identity_association()
                .cluster_name(cluster)
                .association_id(part)
                .send()
                .await;
            Attempt::of(result, gone, BUSY)
        }
        Kind::AccessEntry => {
            api.hit("eks:DeleteAccessEntry");
            let result = api
                .eks
                .delete_access_entry()
                .cluster_name(cluster)
                .principal_arn(part)
                .send()
                .await;
            Attempt::of(result, gone, BUSY)
        }
        _ => {
            api.hit("eks:DeleteCluster");
            let result = api.eks.delete_cluster().name(&item.id).send().await;
            Attempt::of(result, gone, BUSY)
        }
    }
}

/// Which of `items` (node groups or the cluster) EKS still lists: both
/// take minutes to delete, and the cluster cannot go before its node groups.
pub(crate) async fn remaining(api: &Api, items: &[Item]) -> Result<Vec<String>, String> {
    let mut left = Vec::new();
    for item in items {
        let (cluster, part) = split(item);
        let result = if item.kind == Kind::NodeGroup {
            api.hit("eks:DescribeNodegroup");
            api.eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(part)
                .send()
                .await
                .map(drop)
                .map_err(|e| (super::api::code(&e).is_some_and(gone), sdk_message(&e)))
        } else {
            api.hit("eks:DescribeCluster");
            api.eks
                .describe_cluster()
                .name(&item.id)
                .send()
                .await
                .map(drop)
                .map_err(|e| (super::api::code(&e).is_some_and(gone), sdk_message(&e)))
        };
        match result {
            Ok(()) => left.push(item.id.clone()),
            Err((true, _)) => {}
            Err((false, message)) => return Err(message),
        }
    }
    Ok(left)
}
