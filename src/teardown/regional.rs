//! The cluster's regional resources outside EC2 and EKS: the KMS key (and
//! its alias), CloudWatch log groups, Karpenter's interruption queue and
//! its EventBridge rules. Each is kept only with both of Terrace's tags.
//!
//! Listings are narrowed by name where the service allows it (Terrace
//! names all of these after the cluster); KMS keys have no names, so every
//! key's tags are read. A KMS key cannot be deleted at once: it is
//! scheduled for deletion with the shortest waiting period AWS allows,
//! which verify counts as gone.

use std::collections::HashMap;

use super::api::{Api, Attempt, code, each_item, keep_owned, step};
use super::{Item, Kind, TeardownError};
use crate::aws::sdk_message;
use crate::model::tags::owned_by_terrace;

/// AWS's shortest waiting period before a scheduled key is deleted.
const KMS_PENDING_DAYS: i32 = 7;
const NOT_FOUND: &str = "ResourceNotFoundException";

fn not_found(code: &str) -> bool {
    code == NOT_FOUND
}

fn owned_map(tags: Option<&HashMap<String, String>>, cluster: &str) -> bool {
    owned_by_terrace(
        tags.into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        cluster,
    )
}

/// KMS keys, log groups, queues and rules, in deletion order.
pub(crate) async fn list(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let (keys, groups, queues, rules) = futures::try_join!(
        kms_keys(api, cluster),
        log_groups(api, cluster),
        queues(api, cluster),
        rules(api, cluster),
    )?;
    Ok([keys, groups, queues, rules].concat())
}

async fn kms_keys(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut ids = Vec::new();
    let mut pages = api.kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("kms:ListKeys");
        let page = page.map_err(|e| api.error("list KMS keys", sdk_message(&e)))?;
        ids.extend(
            page.keys()
                .iter()
                .filter_map(|k| k.key_id().map(str::to_string)),
        );
    }
    let checked = each_item(
        ids,
        |id| async move { key_is_ours(api, cluster, &id).await },
    )
    .await;
    let mut ours = Vec::new();
    for (id, result) in checked {
        if result? {
            ours.push(id);
        }
    }
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let aliases = aliases(api).await?;
    let mut items: Vec<Item> = ours
        .into_iter()
        .map(|id| {
            let alias = aliases.get(&id).map(|a| a.join(", "));
            Item::new(Kind::KmsKey, id, alias)
        })
        .collect();
    items.sort();
    Ok(items)
}

/// Tagged for the cluster and not already scheduled for deletion.
async fn key_is_ours(api: &Api, cluster: &str, id: &str) -> Result<bool, TeardownError> {
    api.hit("kms:ListResourceTags");
    let tags = match api.kms.list_resource_tags().key_id(id).send().await {
        Ok(out) => out.tags().to_vec(),
        // AWS managed keys and keys of a policy that shuts us out are not
        // ours to delete anyway.
        Err(e)
            if matches!(
                code(&e),
                Some("NotFoundException" | "AccessDeniedException")
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(api.error("read KMS key tags", sdk_message(&e))),
    };
    if !owned_by_terrace(tags.iter().map(|t| (t.tag_key(), t.tag_value())), cluster) {
        return Ok(false);
    }
    api.hit("kms:DescribeKey");
    match api.kms.describe_key().key_id(id).send().await {
        Ok(out) => Ok(!out
            .key_metadata()
            .and_then(|m| m.key_state())
            .is_some_and(|s| matches!(s.as_str(), "PendingDeletion" | "PendingReplicaDeletion"))),
        Err(e) if code(&e) == Some("NotFoundException") => Ok(false),
        Err(e) => Err(api.error("describe a KMS key", sdk_message(&e))),
    }
}

/// Alias names by the key they point at.
async fn aliases(api: &Api) -> Result<HashMap<String, Vec<String>>, TeardownError> {
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    let mut pages = api.kms.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("kms:ListAliases");
        let page = page.map_err(|e| api.error("list KMS aliases", sdk_message(&e)))?;
        for alias in page.aliases() {
            if let (Some(name), Some(key)) = (alias.alias_name(), alias.target_key_id()) {
                by_key
                    .entry(key.to_string())
                    .or_default()
                    .push(name.to_string());
            }
        }
    }
    Ok(by_key)
}

async fn log_groups(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut found = Vec::new();
    let mut pages = api.logs.describe_log_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("logs:DescribeLogGroups");
        let page = page.map_err(|e| api.error("list log groups", sdk_message(&e)))?;
        for group in page.log_groups() {
            if let (Some(name), Some(arn)) = (group.log_group_name(), group.arn())
                && name.contains(cluster)
            {
                // DescribeLogGroups gives the ARN of the group's streams.
                found.push((name.to_string(), arn.trim_end_matches(":*").to_string()));
            }
        }
    }
    let ours = keep_owned(
        api,
        "read log group tags",
        found,
        not_found,
        |(_, arn)| async move {
            api.hit("logs:ListTagsForResource");
            api.logs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
        },
        |out| owned_map(out.tags(), cluster),
    )
    .await?;
    Ok(Item::sorted(
        Kind::LogGroup,
        ours.into_iter().map(|(name, _)| name),
    ))
}

async fn queues(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut urls = Vec::new();
    let mut pages = api
        .sqs
        .list_queues()
        .queue_name_prefix(cluster)
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("sqs:ListQueues");
        let page = page.map_err(|e| api.error("list SQS queues", sdk_message(&e)))?;
        urls.extend(page.queue_urls().iter().cloned());
    }
    let ours = keep_owned(
        api,
        "read SQS queue tags",
        urls,
        queue_gone,
        |url| async move {
            api.hit("sqs:ListQueueTags");
            api.sqs.list_queue_tags().queue_url(url).send().await
        },
        |out| owned_map(out.tags(), cluster),
    )
    .await?;
    let mut items: Vec<Item> = ours
        .into_iter()
        .map(|url| {
            let name = url.rsplit('/').next().map(str::to_string);
            Item::new(Kind::SqsQueue, url, name)
        })
        .collect();
    items.sort();
    Ok(items)
}

fn queue_gone(code: &str) -> bool {
    matches!(
        code,
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist"
    )
}

async fn rules(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        api.hit("events:ListRules");
        let out = api
            .events
            .list_rules()
            .name_prefix(cluster)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| api.error("list EventBridge rules", sdk_message(&e)))?;
        for rule in out.rules() {
            if let (Some(name), Some(arn)) = (rule.name(), rule.arn()) {
                found.push((name.to_string(), arn.to_string()));
            }
        }
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    let ours = keep_owned(
        api,
        "read EventBridge rule tags",
        found,
        not_found,
        |(_, arn)| async move {
            api.hit("events:ListTagsForResource");
            api.events
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
        },
        |out| owned_by_terrace(out.tags().iter().map(|t| (t.key(), t.value())), cluster),
    )
    .await?;
    Ok(Item::sorted(
        Kind::EventRule,
        ours.into_iter().map(|(name, _)| name),
    ))
}

pub(crate) async fn delete(api: &Api, item: Item) -> Attempt {
    let item = &item;
    match item.kind {
        Kind::KmsKey => delete_key(api, &item.id).await,
        Kind::LogGroup => {
            api.hit("logs:DeleteLogGroup");
            let result = api
                .logs
                .delete_log_group()
                .log_group_name(&item.id)
                .send()
                .await;
            Attempt::of(result, not_found, &["OperationAbortedException"])
        }
        Kind::SqsQueue => {
            api.hit("sqs:DeleteQueue");
            let result = api.sqs.delete_queue().queue_url(&item.id).send().await;
            Attempt::of(result, queue_gone, &[])
        }
        _ => delete_rule(api, &item.id).await,
    }
}

/// Its aliases first (an alias outlives its key's deletion otherwise),
/// then the key, scheduled for deletion.
async fn delete_key(api: &Api, id: &str) -> Attempt {
    let gone = |c: &str| c == "NotFoundException";
    api.hit("kms:ListAliases");
    let aliases: Vec<String> = match api.kms.list_aliases().key_id(id).send().await {
        Ok(out) => out
            .aliases()
            .iter()
            .filter_map(|a| a.alias_name().map(str::to_string))
            .collect(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    for alias in aliases {
        api.hit("kms:DeleteAlias");
        let result = api.kms.delete_alias().alias_name(&alias).send().await;
        step!(Attempt::of(result, gone, &[]));
    }
    api.hit("kms:ScheduleKeyDeletion");
    let result = api
        .kms
        .schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(KMS_PENDING_DAYS)
        .send()
        .await;
    // Already pending deletion is as good as done.
    Attempt::of(result, |c| gone(c) || c == "KMSInvalidStateException", &[])
}

/// Its targets first: EventBridge refuses to delete a rule that has any.
async fn delete_rule(api: &Api, name: &str) -> Attempt {
    let gone = not_found;
    api.hit("events:ListTargetsByRule");
    let targets: Vec<String> = match api.events.list_targets_by_rule().rule(name).send().await {
        Ok(out) => out.targets().iter().map(|t| t.id().to_string()).collect(),
        Err(e) => return Attempt::of(Err::<(), _>(e), gone, &[]),
    };
    if !targets.is_empty() {
        api.hit("events:RemoveTargets");
        let result = api
            .events
            .remove_targets()
            .rule(name)
            .set_ids(Some(targets))
            .send()
            .await;
        step!(Attempt::of(result, gone, &[]));
    }
    api.hit("events:DeleteRule");
    let result = api.events.delete_rule().name(name).send().await;
    Attempt::of(result, gone, &[])
}
