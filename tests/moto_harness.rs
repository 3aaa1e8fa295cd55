//! The emulator harness itself: accounts are isolated from each other, and
//! the EKS shim fills its gaps as AWS answers.

mod support;

#[tokio::test]
async fn accounts_are_isolated() {
    terrace::tls::install_crypto_provider();
    let a = support::moto::account().await;
    let b = support::moto::account().await;
    assert_ne!(a.id, b.id);
    let sts_a = aws_sdk_sts::Client::new(&a.sdk_config("us-east-1").await);
    let who = sts_a.get_caller_identity().send().await.unwrap();
    assert_eq!(who.account(), Some(a.id.as_str()));
    let ec2_a = aws_sdk_ec2::Client::new(&a.sdk_config("us-east-1").await);
    ec2_a
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .unwrap();
    let ec2_b = aws_sdk_ec2::Client::new(&b.sdk_config("us-east-1").await);
    let vpcs_b = ec2_b.describe_vpcs().send().await.unwrap();
    assert!(
        vpcs_b
            .vpcs()
            .iter()
            .all(|v| v.cidr_block() != Some("10.9.0.0/16"))
    );
}

/// Shim gap 14: what the provider calls when the cluster's KMS key is
/// replaced behaves as KMS and CloudWatch Logs do.
#[tokio::test]
async fn the_shim_moves_an_alias_and_a_log_groups_key_to_a_new_key() {
    terrace::tls::install_crypto_provider();
    let account = support::moto::account_with_eks_shim().await;
    let config = account.sdk_config("us-east-1").await;
    let kms = aws_sdk_kms::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let key = kms.create_key().send().await.unwrap();
        let key = key.key_metadata().unwrap();
        keys.push((key.key_id().to_string(), key.arn().unwrap().to_string()));
    }
    let (old, new) = (&keys[0], &keys[1]);
    kms.create_alias()
        .alias_name("alias/c1")
        .target_key_id(&old.0)
        .send()
        .await
        .unwrap();
    kms.update_alias()
        .alias_name("alias/c1")
        .target_key_id(&new.1)
        .send()
        .await
        .unwrap();
    let aliases = kms.list_aliases().send().await.unwrap();
    let target = aliases
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/c1"))
        .and_then(|a| a.target_key_id());
    assert_eq!(target, Some(new.0.as_str()));
    let missing = kms
        .update_alias()
        .alias_name("alias/none")
        .target_key_id(&new.0)
        .send()
        .await
        .unwrap_err();
    assert!(
        missing.into_service_error().is_not_found_exception(),
        "KMS answers NotFound for an alias that does not exist"
    );

    let group = "/aws/eks/c1/cluster";
    let key_of = || async {
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .unwrap();
        found.log_groups()[0].kms_key_id().map(str::to_string)
    };
    let create_group = || async {
        logs.create_log_group()
            .log_group_name(group)
            .kms_key_id(&old.1)
            .send()
            .await
            .unwrap();
    };
    create_group().await;
    logs.associate_kms_key()
        .log_group_name(group)
        .kms_key_id(&new.1)
        .send()
        .await
        .unwrap();
    assert_eq!(key_of().await, Some(new.1.clone()));
    logs.disassociate_kms_key()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    assert_eq!(key_of().await, None);
    let missing = logs
        .associate_kms_key()
        .log_group_name("/aws/eks/none/cluster")
        .kms_key_id(&new.1)
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );
    // A group deleted and made again starts from the key it is made with.
    logs.delete_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    create_group().await;
    assert_eq!(key_of().await, Some(old.1.clone()));
}
