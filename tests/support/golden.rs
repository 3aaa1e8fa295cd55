//! The golden path's AWS side in an emulated account: public hosted zones,
//! the ACM certificates of a region and the CNAME records of a zone, read
//! back for assertions.

use std::collections::BTreeMap;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use super::moto::Account;

/// A DNS record as the assertions compare it: name and value, both
/// without the final dot.
pub type Record = (String, String);

/// Creates a public hosted zone; returns its id.
pub async fn public_zone(account: &Account, name: &str) -> String {
    let route53 = aws_sdk_route53::Client::new(&account.sdk_config("us-east-1").await);
    let out = route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("golden-{name}"))
        .send()
        .await
        .expect("moto CreateHostedZone");
    out.hosted_zone()
        .expect("a hosted zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

#[derive(Debug)]
pub struct Certificate {
    pub arn: String,
    pub domain: String,
    /// Every name it covers, sorted.
    pub names: Vec<String>,
    pub status: String,
    pub tags: BTreeMap<String, String>,
    /// The CNAME each name asks for, each once.
    pub validation: Vec<Record>,
}

fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Every certificate of the account in `region`, described.
pub async fn certificates(account: &Account, region: &str) -> Vec<Certificate> {
    let acm = aws_sdk_acm::Client::new(&account.sdk_config(region).await);
    let listed = acm
        .list_certificates()
        .send()
        .await
        .expect("ListCertificates");
    let mut found = Vec::new();
    for summary in listed.certificate_summary_list() {
        let arn = summary.certificate_arn().unwrap().to_string();
        let described = acm
            .describe_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .expect("DescribeCertificate");
        let detail = described.certificate().unwrap();
        let tags = acm
            .list_tags_for_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .expect("ListTagsForCertificate");
        let mut names: Vec<String> = detail.subject_alternative_names().to_vec();
        names.sort();
        names.dedup();
        let mut validation: Vec<Record> = detail
            .domain_validation_options()
            .iter()
            .filter_map(|o| o.resource_record())
            .map(|r| (bare(r.name()), bare(r.value())))
            .collect();
        validation.sort();
        validation.dedup();
        found.push(Certificate {
            arn,
            domain: detail.domain_name().unwrap_or_default().to_string(),
            names,
            status: detail
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            tags: tags
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            validation,
        });
    }
    found
}

/// The zone's CNAME records, sorted.
pub async fn cname_records(account: &Account, zone_id: &str) -> Vec<Record> {
    let route53 = aws_sdk_route53::Client::new(&account.sdk_config("us-east-1").await);
    let out = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets");
    let mut records: Vec<Record> = out
        .resource_record_sets()
        .iter()
        .filter(|s| s.r#type() == &RrType::Cname)
        .flat_map(|s| {
            s.resource_records()
                .iter()
                .map(|r| (bare(s.name()), bare(r.value())))
        })
        .collect();
    records.sort();
    records
}

pub struct Foreign {
    pub certificate: String,
    pub record: Record,
}

/// Someone else's: an untagged certificate and a CNAME in the zone.
pub async fn foreign_certificate_and_record(
    account: &Account,
    region: &str,
    zone_id: &str,
) -> Foreign {
    let acm = aws_sdk_acm::Client::new(&account.sdk_config(region).await);
    let certificate = acm
        .request_certificate()
        .domain_name("legacy.example.org")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .expect("RequestCertificate")
        .certificate_arn()
        .unwrap()
        .to_string();
    let route53 = aws_sdk_route53::Client::new(&account.sdk_config("us-east-1").await);
    let set = ResourceRecordSet::builder()
        .name("www.example.com")
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value("elsewhere.example.net")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Create)
                        .resource_record_set(set)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("ChangeResourceRecordSets");
    Foreign {
        certificate,
        record: ("www.example.com".into(), "elsewhere.example.net".into()),
    }
}
