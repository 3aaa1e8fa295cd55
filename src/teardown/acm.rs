//! The cluster's ACM certificates (both Terrace tags) and the DNS
//! validation records Terraform wrote for them in the public zones.
//!
//! Route53 records carry no tags, so a validation record is found through
//! its certificate: DescribeCertificate names the record, and it is listed
//! only while a certificate of the cluster names it. The sweep therefore
//! deletes a certificate only after its records are gone; a record that
//! cannot be deleted keeps its certificate, and so stays visible to verify.
//! The record's name depends only on the account and the domain: a cluster
//! of the same account in another region validates with the same record,
//! and its next `up` writes it again (DESIGN.md: one region never depends
//! on another).

use aws_sdk_acm::types::{CertificateDetail, Filters, KeyAlgorithm};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};

use super::api::{Api, Attempt, code, each_item};
use super::{Item, Kind, TeardownError};
use super::{dns, inventory};
use crate::aws::sdk_message;
use crate::model::tags::owned_by_terrace;

const NOT_FOUND: &str = "ResourceNotFoundException";

/// Validation records, then certificates: the order they are deleted in.
pub(crate) async fn list(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        api.hit("acm:ListCertificates");
        let out = api
            .acm
            .list_certificates()
            // Without it ACM lists only RSA 1024/2048 keys.
            .includes(
                Filters::builder()
                    .set_key_types(Some(
                        KeyAlgorithm::values()
                            .iter()
                            .map(|k| KeyAlgorithm::from(*k))
                            .collect(),
                    ))
                    .build(),
            )
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| api.error("list ACM certificates", sdk_message(&e)))?;
        arns.extend(
            out.certificate_summary_list()
                .iter()
                .filter_map(|c| c.certificate_arn().map(str::to_string)),
        );
        match out.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => break,
        }
    }
    let checked = each_item(arns, |arn| async move { ours(api, cluster, &arn).await }).await;
    let mut records = Vec::new();
    let mut certificates = Vec::new();
    for (arn, detail) in checked {
        let Some(detail) = detail? else { continue };
        for record in validation_records(api, &detail).await? {
            if !records.contains(&record) {
                records.push(record);
            }
        }
        certificates.push(Item::new(
            Kind::Certificate,
            arn,
            detail.domain_name().map(str::to_string),
        ));
    }
    records.sort();
    certificates.sort();
    Ok([records, certificates].concat())
}

/// The certificate's description when it carries both Terrace tags of
/// `cluster`.
async fn ours(
    api: &Api,
    cluster: &str,
    arn: &str,
) -> Result<Option<CertificateDetail>, TeardownError> {
    api.hit("acm:ListTagsForCertificate");
    let tags = match api
        .acm
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(out) => out.tags().to_vec(),
        Err(e) if code(&e) == Some(NOT_FOUND) => return Ok(None),
        Err(e) => return Err(api.error("read ACM certificate tags", sdk_message(&e))),
    };
    let tagged = owned_by_terrace(
        tags.iter()
            .map(|t| (t.key(), t.value().unwrap_or_default())),
        cluster,
    );
    if !tagged {
        return Ok(None);
    }
    api.hit("acm:DescribeCertificate");
    match api
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out.certificate().cloned()),
        Err(e) if code(&e) == Some(NOT_FOUND) => Ok(None),
        Err(e) => Err(api.error("describe an ACM certificate", sdk_message(&e))),
    }
}

/// The DNS validation records of `detail` that exist in a public hosted
/// zone of this account, as `DnsRecord`-style ids
/// (`<zone id>/<name>/<type>`).
async fn validation_records(
    api: &Api,
    detail: &CertificateDetail,
) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    for option in detail.domain_validation_options() {
        let Some(record) = option.resource_record() else {
            continue;
        };
        let name = dns::normalize(record.name());
        let kind = record.r#type().as_str();
        let domain = option.domain_name().trim_start_matches("*.");
        for zone_id in public_zones_holding(api, domain).await? {
            if let Some(set) = find_record(api, &zone_id, &name, kind).await?
                && set
                    .resource_records()
                    .iter()
                    .any(|r| dns::normalize(r.value()) == dns::normalize(record.value()))
            {
                let item = Item::new(
                    Kind::ValidationRecord,
                    format!("{zone_id}/{name}/{kind}"),
                    Some(format!("{name} {kind}")),
                );
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
    }
    Ok(items)
}

/// The public hosted zones whose name is `domain` or one of its parents,
/// the closest first: where its validation record lives.
async fn public_zones_holding(api: &Api, domain: &str) -> Result<Vec<String>, TeardownError> {
    let mut name = dns::normalize(domain);
    loop {
        let ids = inventory::zone_ids(api, &name, true).await?;
        if !ids.is_empty() {
            return Ok(ids);
        }
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => name = parent.to_string(),
            _ => return Ok(Vec::new()),
        }
    }
}

/// The record set named `name` of type `kind` in the zone, if any.
async fn find_record(
    api: &Api,
    zone_id: &str,
    name: &str,
    kind: &str,
) -> Result<Option<ResourceRecordSet>, TeardownError> {
    api.hit("route53:ListResourceRecordSets");
    let out = api
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .map_err(|e| api.error("list DNS records", sdk_message(&e)))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|s| dns::normalize(s.name()) == name && s.r#type().as_str() == kind)
        .cloned())
}

pub(crate) async fn delete(api: &Api, item: Item) -> Attempt {
    match item.kind {
        Kind::ValidationRecord => delete_record(api, &item.id).await,
        Kind::Certificate => {
            api.hit("acm:DeleteCertificate");
            let result = api
                .acm
                .delete_certificate()
                .certificate_arn(&item.id)
                .send()
                .await;
            // In use by a load balancer's listener that is still going away.
            Attempt::of(result, |c| c == NOT_FOUND, &["ResourceInUseException"])
        }
        other => Attempt::Failed(format!("{} is not an ACM kind", other.as_str())),
    }
}

/// Deletes the record set as it is now (Route53 deletes only an exact
/// match); one already gone counts as deleted.
async fn delete_record(api: &Api, id: &str) -> Attempt {
    let mut parts = id.splitn(3, '/');
    let (Some(zone_id), Some(name), Some(kind)) = (parts.next(), parts.next(), parts.next()) else {
        return Attempt::Failed(format!("not a record id: {id}"));
    };
    let set = match find_record(api, zone_id, name, kind).await {
        Ok(Some(set)) => set,
        Ok(None) => return Attempt::Done,
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    let batch = Change::builder()
        .action(ChangeAction::Delete)
        .resource_record_set(set)
        .build()
        .map_err(|e| e.to_string())
        .and_then(|change| {
            ChangeBatch::builder()
                .changes(change)
                .build()
                .map_err(|e| e.to_string())
        });
    let batch = match batch {
        Ok(batch) => batch,
        Err(e) => return Attempt::Failed(e),
    };
    api.hit("route53:ChangeResourceRecordSets");
    let result = api
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await;
    Attempt::of(
        result,
        |c| c == "NoSuchHostedZone",
        &["PriorRequestNotComplete", "Throttling"],
    )
}
