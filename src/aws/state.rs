//! The regional state bucket, `terrace-state-<account>-<region>`, that
//! Terraform's S3 backend keeps every cluster's state in (with S3-native
//! locking). [`ensure`] creates it in its own region if it is missing and
//! brings its settings to what state needs — versioning, default encryption,
//! all four public-access blocks, a TLS-only policy, expiry of old versions
//! — reporting what it changed, so a second run reports no change. Every
//! call that accepts it carries `ExpectedBucketOwner`, and ownership is
//! confirmed before anything is changed, so a bucket of that name squatted
//! by another account is refused. This module never deletes anything.
//!
//! Encryption is SSE-S3 (`AES256`): the state holds no secrets that need a
//! customer key, and a KMS key would be one more regional resource to create
//! before the bucket and to keep after every teardown. A bucket already
//! encrypted with `aws:kms` is left as it is.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Aws, sdk_message};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};

/// Days a superseded state version is kept before S3 expires it.
pub const NONCURRENT_DAYS: i32 = 90;
const LIFECYCLE_RULE_ID: &str = "terrace-expire-noncurrent-state";
const TLS_POLICY_SID: &str = "TerraceDenyInsecureTransport";

/// The state bucket of `account` in `region`.
pub fn bucket_name(account: &str, region: &str) -> String {
    format!("terrace-state-{account}-{region}")
}

/// A setting [`ensure`] can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    Versioning,
    Encryption,
    PublicAccessBlock,
    TlsOnlyPolicy,
    Lifecycle,
}

impl Setting {
    pub fn describe(self) -> &'static str {
        match self {
            Setting::Versioning => "versioning",
            Setting::Encryption => "default encryption",
            Setting::PublicAccessBlock => "public access block",
            Setting::TlsOnlyPolicy => "TLS-only policy",
            Setting::Lifecycle => "noncurrent-version expiry",
        }
    }
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, Serialize)]
pub struct StateBucket {
    pub name: String,
    pub region: String,
    pub account: String,
    pub created: bool,
    /// Settings that were missing or wrong and have been set.
    pub fixed: Vec<Setting>,
    /// The server-side encryption the bucket uses (`AES256` or `aws:kms`).
    pub encryption: String,
}

impl StateBucket {
    pub fn changed(&self) -> bool {
        self.created || !self.fixed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state bucket {bucket} exists but is not owned by account {account}; Terrace will not keep state in another account's bucket. Delete it from the account that owns it, or contact its owner"
    )]
    NotOwned { bucket: String, account: String },
    #[error(
        "state bucket {bucket} is in {actual}, not {expected}; each region keeps its state in its own region: delete or move that bucket"
    )]
    WrongRegion {
        bucket: String,
        expected: String,
        actual: String,
    },
    #[error("state bucket {bucket}: {action}: {message}")]
    Api {
        bucket: String,
        action: &'static str,
        message: String,
    },
}

/// Creates the state bucket of `account` in `region` if it is missing and
/// corrects its settings; idempotent.
pub async fn ensure(aws: &Aws, account: &str, region: &str) -> Result<StateBucket, StateError> {
    let bucket = Bucket {
        s3: aws.in_region(region).s3(),
        name: bucket_name(account, region),
        account: account.to_string(),
        region: region.to_string(),
    };
    let created = bucket.create_or_confirm().await?;
    let mut fixed = Vec::new();
    if bucket.versioning().await? {
        fixed.push(Setting::Versioning);
    }
    let (encryption, changed) = bucket.encryption().await?;
    if changed {
        fixed.push(Setting::Encryption);
    }
    if bucket.public_access_block().await? {
        fixed.push(Setting::PublicAccessBlock);
    }
    if bucket.tls_only_policy().await? {
        fixed.push(Setting::TlsOnlyPolicy);
    }
    if bucket.lifecycle().await? {
        fixed.push(Setting::Lifecycle);
    }
    Ok(StateBucket {
        name: bucket.name,
        region: bucket.region,
        account: bucket.account,
        created,
        fixed,
        encryption,
    })
}

/// Whether `account` already has its state bucket in `region` (read-only:
/// `up --dry-run` and `down` must not create it).
pub async fn exists(aws: &Aws, account: &str, region: &str) -> Result<bool, StateError> {
    let bucket = Bucket {
        s3: aws.in_region(region).s3(),
        name: bucket_name(account, region),
        account: account.to_string(),
        region: region.to_string(),
    };
    match bucket.confirm_listed().await {
        Ok(()) => Ok(true),
        Err(StateError::NotOwned { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the state bucket holds a state file at `key`.
pub async fn has_state(
    aws: &Aws,
    account: &str,
    region: &str,
    key: &str,
) -> Result<bool, StateError> {
    let name = bucket_name(account, region);
    let result = aws
        .in_region(region)
        .s3()
        .head_object()
        .bucket(&name)
        .key(key)
        .expected_bucket_owner(account)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if status(&e) == Some(404) => Ok(false),
        // S3 answers a missing key with 403, not 404, to a caller that may
        // not list the bucket; listing tells the two apart, and when that
        // is refused too the error names the permission.
        Err(e) if status(&e) == Some(403) => {
            let listed = aws
                .in_region(region)
                .s3()
                .list_objects_v2()
                .bucket(&name)
                .prefix(key)
                .max_keys(1)
                .expected_bucket_owner(account)
                .send()
                .await
                .map_err(|list| StateError::Api {
                    bucket: name.clone(),
                    action: "HeadObject",
                    message: format!(
                        "refused (403), and ListObjectsV2 too ({}): reading the state needs s3:GetObject and s3:ListBucket on the bucket",
                        super::sdk_message(&list)
                    ),
                })?;
            Ok(listed.contents().iter().any(|o| o.key() == Some(key)))
        }
        Err(e) => Err(StateError::Api {
            bucket: name,
            action: "HeadObject",
            message: super::sdk_message(&e),
        }),
    }
}

/// Keeps `body` at `key` in the state bucket of `account` in `region`,
/// beside the state files (drill reports under `drills/<cluster>/`).
pub async fn put_object(
    aws: &Aws,
    account: &str,
    region: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), StateError> {
    let name = bucket_name(account, region);
    aws.in_region(region)
        .s3()
        .put_object()
        .bucket(&name)
        .key(key)
        .content_type(content_type)
        .body(body.into())
        .expected_bucket_owner(account)
        .send()
        .await
        .map_err(|e| StateError::Api {
            bucket: name.clone(),
            action: "PutObject",
            message: sdk_message(&e),
        })?;
    Ok(())
}

/// The keys under `prefix` in the state bucket; none when the bucket
/// does not exist yet.
pub async fn list_keys(
    aws: &Aws,
    account: &str,
    region: &str,
    prefix: &str,
) -> Result<Vec<String>, StateError> {
    let name = bucket_name(account, region);
    let s3 = aws.in_region(region).s3();
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&name)
            .prefix(prefix)
            .set_continuation_token(token)
            .expected_bucket_owner(account)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) if status(&e) == Some(404) => return Ok(Vec::new()),
            Err(e) => {
                return Err(StateError::Api {
                    bucket: name,
                    action: "ListObjectsV2",
                    message: sdk_message(&e),
                });
            }
        };
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(keys),
        }
    }
}

/// The object at `key` in the state bucket.
pub async fn get_object(
    aws: &Aws,
    account: &str,
    region: &str,
    key: &str,
) -> Result<Vec<u8>, StateError> {
    let name = bucket_name(account, region);
    let api = |action: &'static str, message: String| StateError::Api {
        bucket: name.clone(),
        action,
        message,
    };
    let object = aws
        .in_region(region)
        .s3()
        .get_object()
        .bucket(&name)
        .key(key)
        .expected_bucket_owner(account)
        .send()
        .await
        .map_err(|e| api("GetObject", sdk_message(&e)))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| api("GetObject", format!("{key}: {e}")))?;
    Ok(bytes.into_bytes().to_vec())
}

/// Terraform's S3-native state lock: the `<key>.tflock` object beside the
/// state, holding Terraform's lock info as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StateLock {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Operation", default)]
    pub operation: String,
    #[serde(rename = "Who", default)]
    pub who: String,
    #[serde(rename = "Created", default)]
    pub created: String,
}

/// The lock on the state at `key`, if one is held (read-only).
pub async fn state_lock(
    aws: &Aws,
    account: &str,
    region: &str,
    key: &str,
) -> Result<Option<StateLock>, StateError> {
    let name = bucket_name(account, region);
    let api = |action, message| StateError::Api {
        bucket: name.clone(),
        action,
        message,
    };
    let result = aws
        .in_region(region)
        .s3()
        .get_object()
        .bucket(&name)
        .key(format!("{key}.tflock"))
        .expected_bucket_owner(account)
        .send()
        .await;
    let object = match result {
        Ok(object) => object,
        Err(e) if status(&e) == Some(404) => return Ok(None),
        Err(e) => return Err(api("GetObject", sdk_message(&e))),
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| api("GetObject", e.to_string()))?
        .into_bytes();
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| api("reading the lock", e.to_string()))
}

struct Bucket {
    s3: aws_sdk_s3::Client,
    name: String,
    account: String,
    region: String,
}

/// Whether an API error is the service's "this is not configured" answer.
fn is_code<E: ProvideErrorMetadata, R>(
    err: &aws_sdk_s3::error::SdkError<E, R>,
    code: &str,
) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some(code)
}

fn status<E>(err: &aws_sdk_s3::error::SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

impl Bucket {
    fn api<E, R>(
        &self,
        action: &'static str,
    ) -> impl Fn(aws_sdk_s3::error::SdkError<E, R>) -> StateError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        move |e| StateError::Api {
            bucket: self.name.clone(),
            action,
            message: sdk_message(&e),
        }
    }

    fn not_owned(&self) -> StateError {
        StateError::NotOwned {
            bucket: self.name.clone(),
            account: self.account.clone(),
        }
    }

    /// Returns whether the bucket was created. An existing bucket must be
    /// in our region and in our account: AWS answers HeadBucket with 403
    /// when `ExpectedBucketOwner` does not match; emulators that ignore the
    /// parameter are caught by checking the account's own bucket list.
    async fn create_or_confirm(&self) -> Result<bool, StateError> {
        let head = self
            .s3
            .head_bucket()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await;
        match head {
            Ok(out) => {
                if let Some(actual) = out.bucket_region().filter(|r| *r != self.region) {
                    return Err(StateError::WrongRegion {
                        bucket: self.name.clone(),
                        expected: self.region.clone(),
                        actual: actual.to_string(),
                    });
                }
                self.confirm_listed().await?;
                Ok(false)
            }
            Err(e) if status(&e) == Some(403) => Err(self.not_owned()),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || status(&e) == Some(404) =>
            {
                self.create().await
            }
            Err(e) => Err(self.api("HeadBucket")(e)),
        }
    }

    async fn create(&self) -> Result<bool, StateError> {
        let mut create = self.s3.create_bucket().bucket(&self.name);
        // us-east-1 is S3's default location and rejects an explicit constraint.
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
            {
                Ok(false)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_exists()) =>
            {
                Err(self.not_owned())
            }
            Err(e) => Err(self.api("CreateBucket")(e)),
        }
    }

    async fn confirm_listed(&self) -> Result<(), StateError> {
        let out = self
            .s3
            .list_buckets()
            .prefix(&self.name)
            .send()
            .await
            .map_err(self.api("ListBuckets"))?;
        if out
            .buckets()
            .iter()
            .any(|b| b.name() == Some(self.name.as_str()))
        {
            Ok(())
        } else {
            Err(self.not_owned())
        }
    }

    async fn versioning(&self) -> Result<bool, StateError> {
        let out = self
            .s3
            .get_bucket_versioning()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(self.api("GetBucketVersioning"))?;
        if out.status() == Some(&BucketVersioningStatus::Enabled) {
            return Ok(false);
        }
        self.s3
            .put_bucket_versioning()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(self.api("PutBucketVersioning"))?;
        Ok(true)
    }

    /// Returns the algorithm in force and whether it was just set.
    async fn encryption(&self) -> Result<(String, bool), StateError> {
        let got = self
            .s3
            .get_bucket_encryption()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await;
        let current = match got {
            Ok(out) => out
                .server_side_encryption_configuration()
                .map(|c| c.rules())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| r.apply_server_side_encryption_by_default())
                .map(|d| d.sse_algorithm().as_str().to_string())
                .next(),
            Err(e) if is_code(&e, "ServerSideEncryptionConfigurationNotFoundError") => None,
            Err(e) => return Err(self.api("GetBucketEncryption")(e)),
        };
        if let Some(algorithm) = current.filter(|a| a == "AES256" || a.starts_with("aws:kms")) {
            return Ok((algorithm, false));
        }
        let build = |e: aws_smithy_types::error::operation::BuildError| StateError::Api {
            bucket: self.name.clone(),
            action: "PutBucketEncryption",
            message: e.to_string(),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(build)?,
            )
            .build();
        self.s3
            .put_bucket_encryption()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(self.api("PutBucketEncryption"))?;
        Ok(("AES256".to_string(), true))
    }

    async fn public_access_block(&self) -> Result<bool, StateError> {
        let got = self
            .s3
            .get_public_access_block()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await;
        let complete = match got {
            Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
                [
                    c.block_public_acls(),
                    c.ignore_public_acls(),
                    c.block_public_policy(),
                    c.restrict_public_buckets(),
                ]
                .iter()
                .all(|b| *b == Some(true))
            }),
            Err(e) if is_code(&e, "NoSuchPublicAccessBlockConfiguration") => false,
            Err(e) => return Err(self.api("GetPublicAccessBlock")(e)),
        };
        if complete {
            return Ok(false);
        }
        self.s3
            .put_public_access_block()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(self.api("PutPublicAccessBlock"))?;
        Ok(true)
    }

    async fn tls_only_policy(&self) -> Result<bool, StateError> {
        let got = self
            .s3
            .get_bucket_policy()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await;
        let existing = match got {
            Ok(out) => out.policy().map(str::to_string),
            Err(e) if is_code(&e, "NoSuchBucketPolicy") => None,
            Err(e) => return Err(self.api("GetBucketPolicy")(e)),
        };
        let Some(policy) =
            with_tls_only(existing.as_deref(), &self.name).map_err(|message| StateError::Api {
                bucket: self.name.clone(),
                action: "GetBucketPolicy",
                message,
            })?
        else {
            return Ok(false);
        };
        self.s3
            .put_bucket_policy()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .policy(policy)
            .send()
            .await
            .map_err(self.api("PutBucketPolicy"))?;
        Ok(true)
    }

    async fn lifecycle(&self) -> Result<bool, StateError> {
        let got = self
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .send()
            .await;
        let mut rules: Vec<LifecycleRule> = match got {
            Ok(out) => out.rules().to_vec(),
            Err(e) if is_code(&e, "NoSuchLifecycleConfiguration") => Vec::new(),
            Err(e) => return Err(self.api("GetBucketLifecycleConfiguration")(e)),
        };
        let ours = |r: &LifecycleRule| r.id() == Some(LIFECYCLE_RULE_ID);
        let correct = rules.iter().any(|r| {
            ours(r)
                && r.status() == &ExpirationStatus::Enabled
                && r.noncurrent_version_expiration()
                    .and_then(|n| n.noncurrent_days())
                    == Some(NONCURRENT_DAYS)
        });
        if correct {
            return Ok(false);
        }
        let build = |e: aws_smithy_types::error::operation::BuildError| StateError::Api {
            bucket: self.name.clone(),
            action: "PutBucketLifecycleConfiguration",
            message: e.to_string(),
        };
        // Other rules on the bucket are the owner's business: keep them.
        rules.retain(|r| !ours(r));
        rules.push(
            LifecycleRule::builder()
                .id(LIFECYCLE_RULE_ID)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(NONCURRENT_DAYS)
                        .build(),
                )
                .build()
                .map_err(build)?,
        );
        self.s3
            .put_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .expected_bucket_owner(&self.account)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(self.api("PutBucketLifecycleConfiguration"))?;
        Ok(true)
    }
}

/// The statement that refuses every request made without TLS.
fn tls_statement(bucket: &str) -> Value {
    json!({
        "Sid": TLS_POLICY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// Whether a statement already denies all non-TLS access to the bucket.
fn denies_insecure_transport(statement: &Value) -> bool {
    let secure = &statement["Condition"]["Bool"]["aws:SecureTransport"];
    let all_actions = match &statement["Action"] {
        Value::String(a) => a == "s3:*",
        Value::Array(a) => a.iter().any(|a| a == "s3:*"),
        _ => false,
    };
    statement["Effect"] == "Deny"
        && statement["Principal"] == "*"
        && all_actions
        && (secure == "false" || secure == &Value::Bool(false))
}

/// The policy to put so that `existing` also denies non-TLS access, or
/// `None` when it already does. Statements of the owner are kept.
fn with_tls_only(existing: Option<&str>, bucket: &str) -> Result<Option<String>, String> {
    let mut policy: Value = match existing {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| format!("the bucket policy is not JSON: {e}"))?
        }
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    let statements = match &mut policy["Statement"] {
        Value::Array(list) => list,
        single @ Value::Object(_) => {
            *single = Value::Array(vec![single.take()]);
            single.as_array_mut().expect("just made an array")
        }
        _ => return Err("the bucket policy has no Statement list".into()),
    };
    if statements.iter().any(denies_insecure_transport) {
        return Ok(None);
    }
    statements.retain(|s| s["Sid"] != TLS_POLICY_SID);
    statements.push(tls_statement(bucket));
    Ok(Some(policy.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            bucket_name("123456789012", "eu-west-1"),
            "terrace-state-123456789012-eu-west-1"
        );
    }

    #[test]
    fn tls_policy_is_added_once_and_keeps_other_statements() {
        let fresh = with_tls_only(None, "b").unwrap().unwrap();
        assert_eq!(with_tls_only(Some(&fresh), "b").unwrap(), None);

        let other = r#"{"Version":"2012-10-17","Statement":{"Sid":"Mine","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let merged: Value =
            serde_json::from_str(&with_tls_only(Some(other), "b").unwrap().unwrap()).unwrap();
        let sids: Vec<&str> = merged["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["Mine", TLS_POLICY_SID]);
        assert!(with_tls_only(Some("not json"), "b").is_err());
    }
}
