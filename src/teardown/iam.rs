//! IAM roles and instance profiles of the cluster. IAM is global, so every
//! Terrace name carries the cluster name (and Karpenter names its instance
//! profiles `<cluster>_<hash>`): only names containing it are looked at,
//! and of those only the ones tagged for the cluster are kept — a role of
//! cluster `a-2` contains `a` but is not `a`'s.
//!
//! A role goes only once nothing holds it: its managed policies detached,
//! its inline policies deleted, and it removed from every instance profile.

use super::api::{Api, Attempt, keep_owned, step};
use super::tags::{self, Marker};
use super::{Item, Kind, TeardownError};
use crate::aws::sdk_message;
use crate::model::tags::owned_by_terrace;

const GONE: &str = "NoSuchEntity";
const BUSY: &[&str] = &["DeleteConflict"];

fn gone(code: &str) -> bool {
    code == GONE
}

/// Instance profiles and roles, in deletion order.
pub(crate) async fn list(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let (profiles, roles) = futures::try_join!(profiles(api, cluster), roles(api, cluster))?;
    Ok([profiles, roles].concat())
}

async fn roles(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut names = Vec::new();
    let mut pages = api.iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("iam:ListRoles");
        let page = page.map_err(|e| api.error("list IAM roles", sdk_message(&e)))?;
        names.extend(
            page.roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .filter(|n| n.contains(cluster)),
        );
    }
    let ours = keep_owned(
        api,
        "read IAM role tags",
        names,
        gone,
        |name| async move {
            api.hit("iam:ListRoleTags");
            api.iam.list_role_tags().role_name(name).send().await
        },
        |out| owned_by_terrace(out.tags().iter().map(|t| (t.key(), t.value())), cluster),
    )
    .await?;
    Ok(Item::sorted(Kind::IamRole, ours))
}

/// Terrace's profiles, and the ones Karpenter made for the cluster's
/// EC2NodeClasses (tagged `kubernetes.io/cluster/<name>=owned` and
/// `karpenter.sh/managed-by=<name>`), which outlive a drain that never ran.
async fn profiles(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut names = Vec::new();
    let mut pages = api.iam.list_instance_profiles().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("iam:ListInstanceProfiles");
        let page = page.map_err(|e| api.error("list IAM instance profiles", sdk_message(&e)))?;
        names.extend(
            page.instance_profiles()
                .iter()
                .map(|p| p.instance_profile_name().to_string())
                .filter(|n| n.contains(cluster)),
        );
    }
    // GetInstanceProfile carries the tags (ListInstanceProfiles does not).
    let ours = keep_owned(
        api,
        "read instance profile tags",
        names,
        gone,
        |name| async move {
            api.hit("iam:GetInstanceProfile");
            api.iam
                .get_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
        },
        |out| {
            let tags: Vec<(&str, &str)> = out
                .instance_profile()
                .map(|p| p.tags())
                .unwrap_or_default()
                .iter()
                .map(|t| (t.key(), t.value()))
                .collect();
            let karpenter =
                tags::tagged_for(cluster, tags.iter().copied(), &[Marker::KubernetesOwned])
                    && tags::tagged_for(
                        cluster,
                        tags.iter().copied(),
                        &[Marker::KarpenterManagedBy],
                    );
            karpenter || owned_by_terrace(tags.iter().copied(), cluster)
        },
    )
    .await?;
    Ok(Item::sorted(Kind::InstanceProfile, ours))
}

pub(crate) async fn delete(api: &Api, item: Item) -> Attempt {
    let item = &item;
    if item.kind == Kind::InstanceProfile {
        delete_profile(api, &item.id).await
    } else {
        delete_role(api, &item.id).await
    }
}

async fn delete_profile(api: &Api, name: &str) -> Attempt {
    api.hit("iam:GetInstanceProfile");
    let roles: Vec<String> = match api
        .iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => out
            .instance_profile()
            .map(|p| {
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for role in roles {
        api.hit("iam:RemoveRoleFromInstanceProfile");
        let result = api
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(&role)
            .send()
            .await;
        step!(Attempt::of(result, gone, BUSY));
    }
    api.hit("iam:DeleteInstanceProfile");
    let result = api
        .iam
        .delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await;
    Attempt::of(result, gone, BUSY)
}

async fn delete_role(api: &Api, name: &str) -> Attempt {
    let mut attached = Vec::new();
    let mut pages = api
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("iam:ListAttachedRolePolicies");
        match page {
            Ok(page) => attached.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            ),
            Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
        }
    }
    for arn in attached {
        api.hit("iam:DetachRolePolicy");
        let result = api
            .iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(&arn)
            .send()
            .await;
        step!(Attempt::of(result, gone, BUSY));
    }
    api.hit("iam:ListRolePolicies");
    let inline = match api.iam.list_role_policies().role_name(name).send().await {
        Ok(out) => out.policy_names().to_vec(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for policy in inline {
        api.hit("iam:DeleteRolePolicy");
        let result = api
            .iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await;
        step!(Attempt::of(result, gone, BUSY));
    }
    api.hit("iam:ListInstanceProfilesForRole");
    let profiles: Vec<String> = match api
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
    {
        Ok(out) => out
            .instance_profiles()
            .iter()
            .map(|p| p.instance_profile_name().to_string())
            .collect(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for profile in profiles {
        api.hit("iam:RemoveRoleFromInstanceProfile");
        let result = api
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(&profile)
            .role_name(name)
            .send()
            .await;
        step!(Attempt::of(result, gone, BUSY));
    }
    api.hit("iam:DeleteRole");
    let result = api.iam.delete_role().role_name(name).send().await;
    Attempt::of(result, gone, BUSY)
}
