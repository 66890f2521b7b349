//! Rate limits on the endpoints that guess or mint credentials (sign-in, sign-up, password
//! reset, tokens, device codes): token buckets keyed by client address (per group of routes;
//! the routes are listed in `api::rate_limit`) and by account (called by the sign-in use case).
//!
//! Each limit is a bucket of `burst` attempts that refills one attempt every `every`. Buckets
//! live in a bounded table: a bucket that has refilled completely is the same as no bucket and
//! is swept out when the table is full; if the table is still full (a flood of distinct
//! addresses), newcomers share one overflow bucket, so memory stays bounded and the flood is
//! throttled as one client. IPv6 clients are keyed by their /64, the block one host is
//! usually given, so rotating addresses inside it gains nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many attempts a key may make at once, and how fast it gets them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub every: Duration,
}

/// Sign-in, sign-up, password reset and device-code entry, per client address: 10 at once,
/// then one per 6 s.
pub const SIGN_IN_PER_ADDRESS: Rate = Rate {
    burst: 10,
    every: Duration::from_secs(6),
};
/// Token creation and refresh, device codes and their polling, per client address: 30 at
/// once, then one per 2 s (a device-flow client polls every 5 s).
pub const TOKENS_PER_ADDRESS: Rate = Rate {
    burst: 30,
    every: Duration::from_secs(2),
};
/// Sign-in attempts per account, from anywhere: 10 at once, then one per 30 s.
pub const SIGN_IN_PER_ACCOUNT: Rate = Rate {
    burst: 10,
    every: Duration::from_secs(30),
};
/// The most keys one limit remembers.
pub const MAX_KEYS: usize = 100_000;

/// A group of routes sharing a per-address limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Sign-in, sign-up, password reset, entering a device login's code.
    SignIn,
    /// Token creation and refresh, device codes.
    Tokens,
}

/// A request over its limit, and when the next one will be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; try again in {} s", self.retry_after_secs())]
pub struct RateLimited {
    pub retry_after: Duration,
}

impl RateLimited {
    /// Whole seconds, rounded up, at least 1: what `Retry-After` says.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Every rate limit of the server.
pub struct Limits {
    sign_in: Limiter<IpAddr>,
    tokens: Limiter<IpAddr>,
    accounts: Limiter<String>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            sign_in: Limiter::new(SIGN_IN_PER_ADDRESS, MAX_KEYS),
            tokens: Limiter::new(TOKENS_PER_ADDRESS, MAX_KEYS),
            accounts: Limiter::new(SIGN_IN_PER_ACCOUNT, MAX_KEYS),
        }
    }
}

impl Limits {
    /// Counts a request of `group` from `client`.
    pub fn check_address(&self, group: Group, client: IpAddr) -> Result<(), RateLimited> {
        let limiter = match group {
            Group::SignIn => &self.sign_in,
            Group::Tokens => &self.tokens,
        };
        limiter.check(address_key(client), Instant::now())
    }

    /// Counts a sign-in attempt for the account `email` (whether or not it exists, so the
    /// answer says nothing about that). Call it before checking the password.
    pub fn check_account(&self, email: &str) -> Result<(), RateLimited> {
        self.accounts
            .check(email.trim().to_lowercase(), Instant::now())
    }
}

/// The key of a client address: IPv4 (and IPv4-mapped IPv6) as is, IPv6 by its /64.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
    }
}

/// A table of token buckets, one per key, holding at most `capacity` keys.
struct Limiter<K> {
    rate: Rate,
    capacity: usize,
    state: Mutex<Table<K>>,
}

struct Table<K> {
    buckets: HashMap<K, Bucket>,
    /// Shared by keys that find the table full.
    overflow: Bucket,
    /// When full buckets were last swept out; a sweep walks the whole table, so a flood
    /// triggers one a second at most.
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let gained =
            now.saturating_duration_since(self.at).as_secs_f64() / rate.every.as_secs_f64();
        self.tokens = (self.tokens + gained).min(f64::from(rate.burst));
        self.at = now;
    }

    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), RateLimited> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(RateLimited {
            retry_after: rate.every.mul_f64(1.0 - self.tokens),
        })
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut refilled = *self;
        refilled.refill(rate, now);
        refilled.tokens >= f64::from(rate.burst)
    }
}

impl<K: Hash + Eq> Limiter<K> {
    fn new(rate: Rate, capacity: usize) -> Limiter<K> {
        let now = Instant::now();
        Limiter {
            rate,
            capacity,
            state: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: Bucket::full(rate, now),
                swept: None,
            }),
        }
    }

    fn check(&self, key: K, now: Instant) -> Result<(), RateLimited> {
        let rate = self.rate;
        // A panic while holding the lock cannot leave a bucket half-updated in a way that
        // matters: the table is only a throttle.
        let mut table = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !table.buckets.contains_key(&key) && table.buckets.len() >= self.capacity {
            let due = table
                .swept
                .is_none_or(|swept| now.saturating_duration_since(swept) >= Duration::from_secs(1));
            if due {
                table.buckets.retain(|_, bucket| !bucket.is_full(rate, now));
                table.swept = Some(now);
            }
            if table.buckets.len() >= self.capacity {
                return table.overflow.take(rate, now);
            }
        }
        table
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().unwrap().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        burst: 3,
        every: Duration::from_secs(10),
    };

    #[test]
    fn a_key_gets_its_burst_then_one_attempt_per_period() {
        let limiter = Limiter::new(RATE, 10);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check("a", start).unwrap();
        }
        let refused = limiter.check("a", start).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        assert_eq!(refused.retry_after_secs(), 10);
        // Another key is not affected.
        limiter.check("b", start).unwrap();
        // Four seconds later, six remain.
        let later = start + Duration::from_secs(4);
        let refused = limiter.check("a", later).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 6);
        limiter.check("a", start + Duration::from_secs(10)).unwrap();
        limiter
            .check("a", start + Duration::from_secs(10))
            .unwrap_err();
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_keys() {
        let limiter = Limiter::new(RATE, 4);
        let start = Instant::now();
        for key in 0..4 {
            limiter.check(key, start).unwrap();
        }
        // The table is full of buckets still refilling: newcomers share the overflow bucket,
        // whose burst they use up together.
        for key in 4..7 {
            limiter.check(key, start).unwrap();
        }
        assert!(limiter.check(7, start).is_err());
        assert!(limiter.check(8, start).is_err());
        assert_eq!(limiter.len(), 4);
        // Once the first buckets have refilled, they are swept and newcomers get their own.
        let later = start + Duration::from_secs(11);
        limiter.check(100, later).unwrap();
        assert_eq!(limiter.len(), 1);
        // Room again: newcomers get their own buckets until the table is full.
        for key in 101..104 {
            limiter.check(key, later).unwrap();
        }
        assert_eq!(limiter.len(), 4);
    }

    #[test]
    fn accounts_are_keyed_case_blind_and_addresses_by_their_block() {
        let limits = Limits::default();
        for _ in 0..SIGN_IN_PER_ACCOUNT.burst {
            limits.check_account("Ada@Example.com").unwrap();
        }
        let refused = limits.check_account(" ada@example.com").unwrap_err();
        assert_eq!(refused.retry_after_secs(), 30);
        limits.check_account("bob@example.com").unwrap();

        let host: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(host), address_key(neighbour));
        assert_ne!(address_key(host), address_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        for _ in 0..SIGN_IN_PER_ADDRESS.burst {
            limits.check_address(Group::SignIn, host).unwrap();
        }
        assert!(limits.check_address(Group::SignIn, neighbour).is_err());
        // Groups count apart.
        limits.check_address(Group::Tokens, host).unwrap();
    }
}
