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
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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

/// The SDK configuration: the default credential and region chain
/// (environment, profile, web identity, ECS task role, IMDS), the configured
/// region first if any. `AWS_ENDPOINT_URL` is honoured by the SDK.
pub async fn load_sdk_config(region: Option<&str>, request_timeout: Duration) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config(request_timeout));
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    loader.load().await
}
