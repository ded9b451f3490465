//! Request rate limits: per client address on every listener, per token on the API.
//!
//! Each limit is a keyed GCRA limiter from `governor` (lock-free per key, a few tens of
//! nanoseconds per check), allowing `n` requests per second with a burst of `n`. Over the
//! limit a request is answered 429 with `Retry-After` before any handler runs (per
//! address), or before the handler does anything (per token, checked right after the token
//! is authenticated, so unknown tokens never occupy an entry). This module never decides
//! who a client is beyond the TCP peer address: behind a proxy the proxy is the client.

use crate::api::ApiError;
use axum::http::StatusCode;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

/// A per-key limiter of `n` requests per second (burst `n`).
pub(crate) struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_second` requests per second and key; 0 is treated as 1 (the configuration's
    /// `validate()` refuses 0 before this is reached).
    pub(crate) fn per_second(per_second: u32) -> Self {
        let n = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(n).allow_burst(n)),
        }
    }

    /// Counts one request for `key`; over the limit, how long until one would be allowed.
    pub(crate) fn check(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drops the state of keys that are back at a full burst (they behave as new keys), so
    /// the table holds only recently active clients.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys currently tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// The key a client address is counted under: the IPv4 address (IPv4-mapped IPv6 included),
/// or the /64 an IPv6 address belongs to (one host commonly holds a whole /64).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Whole seconds for `Retry-After` (RFC 9110 §10.2.3): rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The 429 for a client address over its limit on `listener` (counted in
/// `trustbox_rate_limited_total`).
pub(crate) fn address_limited(listener: &'static str, wait: Duration) -> ApiError {
    metrics::counter!("trustbox_rate_limited_total", "listener" => listener, "limit" => "ip")
        .increment(1);
    too_many_requests(wait, "this address")
}

/// The 429 for an API token over its limit.
pub(crate) fn token_limited(wait: Duration) -> ApiError {
    metrics::counter!("trustbox_rate_limited_total", "listener" => "api", "limit" => "token")
        .increment(1);
    too_many_requests(wait, "this token")
}

/// The 429 problem for a client over its limit; `who` says which limit (for the detail).
fn too_many_requests(wait: Duration, who: &str) -> ApiError {
    let secs = retry_after_secs(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("too many requests from {who}; retry after {secs} s"),
    )
    .with_retry_after(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limited_with_a_wait() {
        let l = KeyedLimiter::per_second(3);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..3 {
            assert!(l.check(&a).is_ok());
        }
        let wait = l
            .check(&a)
            .expect_err("fourth request within the burst window");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.check(&b).is_ok(), "another key has its own budget");
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
