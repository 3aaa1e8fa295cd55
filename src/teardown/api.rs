//! The AWS clients teardown uses, with a count of the calls it makes (per
//! operation, every page and every retry of a wait), for the reports and
//! the sweep benchmark.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::TeardownError;
use crate::aws::{Aws, sdk_message};

pub(crate) struct Api {
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub eks: aws_sdk_eks::Client,
    pub kms: aws_sdk_kms::Client,
    pub acm: aws_sdk_acm::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
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
            acm: aws.acm(),
            iam: aws.iam(),
            logs: aws.logs(),
            sqs: aws.sqs(),
            events: aws.events(),
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

/// How one delete attempt ended.
pub(crate) enum Attempt {
    Done,
    /// AWS refused for a reason that passes (still in use, detaching).
    Retry(String),
    Failed(String),
}

impl Attempt {
    /// A delete's answer: done (also when the resource was already gone,
    /// `gone` codes), worth another try (`busy` codes), or failed.
    pub fn of<T, E, R>(
        result: Result<T, aws_sdk_sts::error::SdkError<E, R>>,
        gone: impl Fn(&str) -> bool,
        busy: &[&str],
    ) -> Attempt
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match result {
            Ok(_) => Attempt::Done,
            Err(e) => match code(&e) {
                Some(c) if gone(c) => Attempt::Done,
                Some(c) if busy.contains(&c) => Attempt::Retry(sdk_message(&e)),
                _ => Attempt::Failed(sdk_message(&e)),
            },
        }
    }
}

impl Attempt {
    /// One step of a delete that takes several calls: `Ok` to go on to the
    /// next step (a step on something already gone counts as done), else
    /// how the whole delete ends.
    pub fn step(self) -> Result<(), Attempt> {
        match self {
            Attempt::Done => Ok(()),
            other => Err(other),
        }
    }
}

/// Ends a multi-call delete early when one of its steps did not succeed.
macro_rules! step {
    ($attempt:expr) => {
        if let Err(end) = $attempt.step() {
            return end;
        }
    };
}
pub(crate) use step;

/// Calls `call` on every item, at most [`CONCURRENCY`](super::CONCURRENCY)
/// at once, and pairs each item with its answer: the per-resource reads
/// (tags, descriptions) that follow a listing.
pub(crate) async fn each_item<T, R, F, Fut>(items: Vec<T>, call: F) -> Vec<(T, R)>
where
    T: Clone,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    use futures::StreamExt;
    let call = &call;
    futures::stream::iter(items)
        .map(|item| async move {
            let answer = call(item.clone()).await;
            (item, answer)
        })
        .buffer_unordered(super::CONCURRENCY)
        .collect()
        .await
}

/// The candidates of a listing that a per-item read (tags, a description;
/// run as [`each_item`]) shows to be the cluster's, as `ours` judges the
/// answer. A candidate whose read fails with a `gone` code went away
/// meanwhile and is dropped; any other failure fails the listing, naming
/// `what`.
pub(crate) async fn keep_owned<T, O, E, R, F, Fut>(
    api: &Api,
    what: &str,
    candidates: Vec<T>,
    gone: impl Fn(&str) -> bool,
    read: F,
    ours: impl Fn(&O) -> bool,
) -> Result<Vec<T>, TeardownError>
where
    T: Clone,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<O, aws_sdk_sts::error::SdkError<E, R>>>,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut kept = Vec::new();
    for (candidate, answer) in each_item(candidates, read).await {
        match answer {
            Ok(out) if ours(&out) => kept.push(candidate),
            Ok(_) => {}
            Err(e) if code(&e).is_some_and(&gone) => {}
            Err(e) => return Err(api.error(what, sdk_message(&e))),
        }
    }
    Ok(kept)
}
