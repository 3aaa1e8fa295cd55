//! The AWS clients teardown uses, with a count of the calls it makes (per
//! operation, every page and every retry of a wait), for the reports and
//! the sweep benchmark.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::TeardownError;
use crate::aws::Aws;

pub(crate) struct Api {
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub eks: aws_sdk_eks::Client,
    pub kms: aws_sdk_kms::Client,
    region: String,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl Api {
    pub fn new(aws: &Aws) -> Api {
        Api {
            ec2: aws.ec2(),
            elbv2: aws.elbv2(),
            route53: aws.route53(),
            tagging: aws.tagging(),
            eks: aws.eks(),
            kms: aws.kms(),
            region: aws.region().to_string(),
            calls: Mutex::default(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Records one call of `operation` (`ec2:DescribeInstances`, …).
    pub fn hit(&self, operation: &'static str) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(operation).or_default() += 1;
        }
    }

    /// Calls made so far, by operation.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .unwrap_or_default()
    }

    /// A listing failure, which stops the phase: deleting from a partial
    /// picture could miss dependencies.
    pub fn error(&self, action: &str, message: String) -> TeardownError {
        TeardownError::Aws {
            action: action.to_string(),
            region: self.region.clone(),
            message,
        }
    }
}

/// The error code of an SDK error (`DependencyViolation`, …), if AWS sent one.
pub(crate) fn code<E, R>(err: &aws_sdk_sts::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}
