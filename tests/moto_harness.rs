//! The emulator harness itself: accounts are isolated from each other.

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
