//! A per-client rate limit: a token bucket per IP address, in memory. Enough to keep one
//! client from keeping the server busy; the tokens themselves cannot be guessed, so this is
//! not what protects them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::http::HeaderMap;

/// How many requests a client may make at once, and how fast its allowance comes back.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub burst: f64,
    pub per_second: f64,
}

/// Generous enough for a reader paging through the archive, and for a mail provider's
/// servers, which send the one-click POSTs of many subscribers from a few addresses.
pub const DEFAULT_RATE: Rate = Rate {
    burst: 60.0,
    per_second: 10.0,
};

/// Buckets kept before idle (full) ones are forgotten.
const MAX_CLIENTS: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    rate: Rate,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// Takes one request from the client's allowance; false when it has none left.
    pub fn allow(&mut self, client: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&client) {
            self.forget_idle(now);
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: rate.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops the buckets that have filled up again: those clients are as if new.
    fn forget_idle(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * rate.per_second < rate.burst
        });
    }
}

/// The client a request is from. Behind a reverse proxy on the same machine every
/// connection comes from loopback, and the proxy names the client as the last entry of
/// `X-Forwarded-For` (Caddy and nginx's `$proxy_add_x_forwarded_for` both append it). From
/// anywhere else the header is ignored: a client could write anything in it.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if !peer.ip().is_loopback() {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill_and_others_are_unaffected() {
        let mut limiter = RateLimiter::new(Rate {
            burst: 3.0,
            per_second: 2.0,
        });
        let start = Instant::now();
        let (one, two): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let allowed: Vec<bool> = (0..4).map(|_| limiter.allow(one, start)).collect();
        assert_eq!(allowed, [true, true, true, false]);
        assert!(limiter.allow(two, start));
        assert!(!limiter.allow(one, start + Duration::from_millis(400)));
        assert!(limiter.allow(one, start + Duration::from_millis(600)));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_proxy_on_loopback() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        let proxy: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        assert_eq!(
            client_address(proxy, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(remote, &headers), remote.ip());
        assert_eq!(client_address(proxy, &HeaderMap::new()), proxy.ip());
    }
}
