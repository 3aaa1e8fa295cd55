//! What an emulated account holds for one cluster, as a test checks it
//! afterwards: the objects of its state bucket (the state, Terraform's
//! lock); what is still tagged for it is support::tagged's.

use serde_json::Value;

use super::moto::Account;

pub fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// Terrace's state bucket in `region`.
pub fn bucket(account: &Account, region: &str) -> String {
    format!("terrace-state-{}-{region}", account.id)
}

pub fn state_key(cluster: &str) -> String {
    format!("clusters/{cluster}/terraform.tfstate")
}

pub fn lock_key(cluster: &str) -> String {
    format!("clusters/{cluster}/terraform.tfstate.tflock")
}

/// An object of the state bucket, parsed, if it exists.
pub async fn object(account: &Account, region: &str, key: &str) -> Option<Value> {
    let s3 = s3(&account.sdk_config(region).await);
    let object = s3
        .get_object()
        .bucket(bucket(account, region))
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = object.body.collect().await.unwrap().into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// The resources a state object records (none when there is no state).
pub async fn state_resources(account: &Account, region: &str, cluster: &str) -> usize {
    object(account, region, &state_key(cluster))
        .await
        .and_then(|s| s["resources"].as_array().map(Vec::len))
        .unwrap_or(0)
}
