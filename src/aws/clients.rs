//! The one factory for AWS SDK clients. Every phase that talks to AWS
//! (preflight, state, token, discovery, and later up, down and sweep) gets
//! its clients from an [`Aws`], so credentials, region, retries and endpoint
//! overrides are decided in one place.
//!
//! Configuration is the SDK's standard chain (env, profile, SSO, IMDS …);
//! `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` are honoured by
//! `aws-config` itself, which is how emulators work with no other switch.
//! This module never logs or returns credential values.

use std::fmt;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

/// Session name that shows up in CloudTrail for an assumed `--role-arn`.
const SESSION_NAME: &str = "terrace";
/// Region for account-wide calls when the chain names none.
const FALLBACK_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no usable AWS credentials ({0}); set AWS_PROFILE, run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    Credentials(String),
    #[error("cannot read the caller's identity (sts:GetCallerIdentity): {0}")]
    Identity(String),
}

/// SDK configuration for one region, handing out clients.
#[derive(Clone)]
pub struct Aws {
    config: SdkConfig,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("region", &self.region())
            .finish()
    }
}

impl Aws {
    /// Loads the standard chain for `region`, with standard retries.
    pub async fn connect(region: &str) -> Aws {
        Aws::connect_as(region, None).await
    }

    /// As [`connect`](Aws::connect), then assumes `role_arn` when given.
    /// The role is assumed lazily, on the first call that needs credentials.
    pub async fn connect_as(region: &str, role_arn: Option<&str>) -> Aws {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::standard())
            .load()
            .await;
        let Some(role_arn) = role_arn else {
            return Aws { config: base };
        };
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(SESSION_NAME)
            .configure(&base)
            .build()
            .await;
        Aws {
            config: base
                .to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build(),
        }
    }

    /// The standard chain's own region (`AWS_REGION`, profile …), else
    /// us-east-1: for calls that are not about one region, such as listing
    /// the account's regions.
    pub async fn connect_default() -> Aws {
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(Region::from_static(FALLBACK_REGION));
        Aws {
            config: aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .retry_config(RetryConfig::standard())
                .load()
                .await,
        }
    }

    /// Wraps an existing configuration (tests build one per emulated account).
    pub fn from_config(config: SdkConfig) -> Aws {
        Aws { config }
    }

    /// The same credentials and settings in another region.
    pub fn in_region(&self, region: &str) -> Aws {
        Aws {
            config: self
                .config
                .to_builder()
                .region(Region::new(region.to_string()))
                .build(),
        }
    }

    pub fn region(&self) -> &str {
        self.config.region().map(Region::as_ref).unwrap_or_default()
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// Resolves the current credentials (assuming the role if one was given).
    pub async fn credentials(&self) -> Result<Credentials, ClientError> {
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| ClientError::Credentials("no credentials provider".into()))?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| ClientError::Credentials(e.to_string()))
    }

    /// The caller's account id (STS GetCallerIdentity).
    pub async fn account(&self) -> Result<String, ClientError> {
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| ClientError::Identity(super::sdk_message(&e)))?;
        out.account()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Identity("no account in the answer".into()))
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    pub fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.config)
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.config)
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.config)
    }

    pub fn acm(&self) -> aws_sdk_acm::Client {
        aws_sdk_acm::Client::new(&self.config)
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn events(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config)
    }

    pub fn tagging(&self) -> aws_sdk_resourcegroupstagging::Client {
        aws_sdk_resourcegroupstagging::Client::new(&self.config)
    }

    /// Whether S3 is addressed path-style: when its endpoint is overridden,
    /// since emulators cannot serve `<bucket>.<host>` virtual-host names.
    /// Terraform's state backend follows the same answer.
    pub fn s3_path_style(&self) -> bool {
        self.config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.s3_path_style())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}
