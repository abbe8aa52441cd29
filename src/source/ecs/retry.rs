//! How AWS calls are retried and bounded in time.
//!
//! Each call is retried by the SDK (standard mode: exponential backoff with
//! full jitter, throttling errors included, and a client-side retry budget so a
//! struggling endpoint is not hammered). Each attempt has `request_timeout`;
//! each call, with its retries, has a few times that. A whole cluster's
//! refresh has [`cluster_deadline`]: past it, the cluster keeps its last
//! good tasks and the next poll tries again.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AssumeRole;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5))
}

pub fn timeout_config(request_timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(request_timeout.min(Duration::from_secs(5)))
        .operation_attempt_timeout(request_timeout)
        .operation_timeout(request_timeout * MAX_ATTEMPTS + Duration::from_secs(10))
        .build()
}

/// The longest one cluster's refresh may take: enough for a large cluster's
/// pages, short enough that one hung cluster does not starve the others for
/// long.
pub fn cluster_deadline(request_timeout: Duration) -> Duration {
    (request_timeout * 6).max(Duration::from_secs(30))
}

/// What one source's SDK configuration is for.
pub struct SdkTarget<'a> {
    /// The configured region, if any (else the default chain's).
    pub region: Option<&'a str>,
    /// Another endpoint for every call (else the SDK's, or
    /// `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<&'a str>,
    /// A role assumed with the default chain's identity.
    pub role: Option<&'a AssumeRole>,
    pub request_timeout: Duration,
}

/// The session name of every assumed role: CloudTrail in the member
/// account says who read.
pub const SESSION_NAME: &str = "ecs-dns";

/// The SDK configuration: the default credential and region chain
/// (environment, profile, web identity, ECS task role, IMDS), the configured
/// region first if any. `AWS_ENDPOINT_URL` is honoured by the SDK. With a
/// role, its credentials come from STS (AssumeRole, with the external ID if
/// set), cached and refreshed by the SDK before they expire; a failure to
/// assume is an error of each call, so the source keeps its last good data
/// and the next poll tries again.
pub async fn load_sdk_config(target: SdkTarget<'_>) -> SdkConfig {
    let loader = || {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry_config())
            .timeout_config(timeout_config(target.request_timeout));
        if let Some(region) = target.region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        if let Some(url) = target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader
    };
    let base = loader().load().await;
    let Some(role) = target.role else {
        return base;
    };
    let mut provider = AssumeRoleProvider::builder(&role.role_arn)
        .session_name(SESSION_NAME)
        .configure(&base);
    if let Some(region) = base.region() {
        provider = provider.region(region.clone());
    }
    if let Some(id) = &role.external_id {
        provider = provider.external_id(id.expose());
    }
    let provider = provider.build().await;
    loader().credentials_provider(provider).load().await
}
