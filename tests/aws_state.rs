//! The regional state bucket against the moto emulator: bootstrap from
//! nothing, a re-run that changes nothing, drift repaired, and a bucket of
//! that name owned by another account refused.

mod support;

use aws_sdk_s3::types::BucketVersioningStatus;
use support::moto::{self, Account};
use terrace::aws::Aws;
use terrace::aws::state::{self, Setting, StateError};

async fn s3(account: &Account, region: &str) -> aws_sdk_s3::Client {
    Aws::from_config(account.sdk_config(region).await).s3()
}

/// Reads every setting back with the SDK, independently of `state`.
async fn assert_hardened(account: &Account, region: &str, bucket: &str) {
    let s3 = s3(account, region).await;
    let location = s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let constraint = location
        .location_constraint()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    // S3 reports us-east-1 as an empty location.
    let expected = if region == "us-east-1" { "" } else { region };
    assert_eq!(constraint, expected);

    let versioning = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));

    let encryption = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rules = encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules();
    assert_eq!(
        rules[0]
            .apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );

    let block = s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4]
    );

    let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let deny = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a deny statement");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Action"], "s3:*");

    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = &lifecycle.rules()[0];
    assert_eq!(
        rule.noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        Some(90)
    );
}

#[tokio::test]
async fn bootstrap_from_nothing_then_no_change() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config("eu-west-1").await);

    let first = state::ensure(&aws, &account.id, "eu-west-1").await.unwrap();
    assert_eq!(
        first.name,
        format!("terrace-state-{}-eu-west-1", account.id)
    );
    assert!(first.created && first.changed());
    assert_eq!(first.encryption, "AES256");
    assert_eq!(
        first.fixed,
        [
            Setting::Versioning,
            Setting::Encryption,
            Setting::PublicAccessBlock,
            Setting::TlsOnlyPolicy,
            Setting::Lifecycle
        ]
    );
    assert_hardened(&account, "eu-west-1", &first.name).await;

    let second = state::ensure(&aws, &account.id, "eu-west-1").await.unwrap();
    assert!(!second.created);
    assert!(second.fixed.is_empty(), "{:?}", second.fixed);
    assert!(!second.changed());
}

#[tokio::test]
async fn us_east_1_is_created_without_a_location_constraint() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    // A client in another region: ensure must use the bucket's own region.
    let aws = Aws::from_config(account.sdk_config("eu-west-1").await);
    let bucket = state::ensure(&aws, &account.id, "us-east-1").await.unwrap();
    assert!(bucket.created);
    assert_hardened(&account, "us-east-1", &bucket.name).await;
}

#[tokio::test]
async fn drift_is_repaired_and_reported() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config("eu-central-1").await);
    let bucket = state::ensure(&aws, &account.id, "eu-central-1")
        .await
        .unwrap();

    let s3 = s3(&account, "eu-central-1").await;
    s3.put_bucket_versioning()
        .bucket(&bucket.name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_bucket_policy()
        .bucket(&bucket.name)
        .send()
        .await
        .unwrap();

    let repaired = state::ensure(&aws, &account.id, "eu-central-1")
        .await
        .unwrap();
    assert!(!repaired.created);
    assert_eq!(
        repaired.fixed,
        [Setting::Versioning, Setting::TlsOnlyPolicy]
    );
    assert_hardened(&account, "eu-central-1", &bucket.name).await;
}

/// moto ignores `ExpectedBucketOwner` (it answers HeadBucket for another
/// account's bucket with 200), so this exercises the second guard: the
/// bucket must be in the caller's own bucket list before anything changes.
#[tokio::test]
async fn a_bucket_squatted_by_another_account_is_refused_and_left_alone() {
    terrace::tls::install_crypto_provider();
    let victim = moto::account().await;
    let squatter = moto::account().await;
    let name = state::bucket_name(&victim.id, "eu-west-1");
    let squatter_s3 = s3(&squatter, "eu-west-1").await;
    squatter_s3
        .create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let aws = Aws::from_config(victim.sdk_config("eu-west-1").await);
    let err = state::ensure(&aws, &victim.id, "eu-west-1")
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::NotOwned { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&name), "{message}");
    assert!(message.contains("not owned by account"), "{message}");

    // Nothing was changed on the squatter's bucket.
    let versioning = squatter_s3
        .get_bucket_versioning()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), None);
    assert!(
        squatter_s3
            .get_bucket_policy()
            .bucket(&name)
            .send()
            .await
            .is_err()
    );
}

/// `down` asks whether a cluster has state: a key missing from an
/// existing bucket is "no state", not an error, even where S3 answers the
/// HeadObject with 403 (as it does to a caller that may not list the
/// bucket, and as moto does under the TLS-only policy). The present case
/// is `down` of a built cluster in tests/cluster_emulator.rs.
#[tokio::test]
async fn a_state_key_missing_from_an_existing_bucket_is_no_state() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config("eu-west-1").await);
    state::ensure(&aws, &account.id, "eu-west-1").await.unwrap();
    let key = "clusters/web/terraform.tfstate";
    let missing = state::has_state(&aws, &account.id, "eu-west-1", key).await;
    assert!(matches!(missing, Ok(false)), "{missing:?}");
}
