//! Response-rate limiting (RRL) per client prefix, for UDP: off by default.
//!
//! A DNS server on UDP can be made to reflect traffic at a spoofed victim.
//! With RRL on, each client prefix (/24 for IPv4, /56 for IPv6) gets a
//! budget of `responses_per_second` answers (a token bucket holding one
//! second's worth); past it, responses are dropped, except every `slip`-th,
//! which is sent truncated (TC, no records) so that a real client behind the
//! prefix retries over TCP, where spoofing is not possible.
//!
//! Behind a Route 53 Resolver all queries come from a few endpoint
//! addresses, so RRL is off unless configured.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

pub use crate::config::RrlConfig;

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send,
    /// Send it truncated: TC set, no records.
    Slip,
    Drop,
}

/// Prefixes tracked at most. A flood of spoofed prefixes must not grow
/// memory without bound, nor reset anyone's budget: past the cap the buckets
/// idle for a second or more go first (they have refilled to a full
/// budget, so forgetting them changes nothing), then the idlest.
const MAX_PREFIXES: usize = 100_000;
/// Shards of the table, so that the UDP threads rarely wait for each other.
const SHARDS: usize = 64;
const PER_SHARD: usize = MAX_PREFIXES / SHARDS;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    limited: u32,
}

/// One shard of the table: client prefix → its bucket.
type Shard = Mutex<HashMap<[u8; 8], Bucket>>;

/// One limiter for every UDP socket of the server: the kernel spreads a
/// client's packets over the sockets by source port, so per-socket
/// budgets would give a client that varies its port the rate times the
/// number of sockets.
pub struct Limiter {
    config: RrlConfig,
    shards: Box<[Shard]>,
}

impl Limiter {
    pub fn new(config: RrlConfig) -> Limiter {
        Limiter {
            config,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.config.responses_per_second > 0
    }

    /// Decides for one response to `client` at `now`.
    pub fn check(&self, client: IpAddr, now: Instant) -> Action {
        if !self.is_enabled() {
            return Action::Send;
        }
        let key = prefix(client);
        // A fixed spread of the prefix bytes: the shard only has to even
        // out the load, not resist collisions (each shard is bounded).
        let shard = key
            .iter()
            .fold(0usize, |h, b| h.wrapping_mul(31) ^ usize::from(*b))
            % SHARDS;
        let mut buckets = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let rate = f64::from(self.config.responses_per_second);
        if buckets.len() >= PER_SHARD && !buckets.contains_key(&key) {
            make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
            limited: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Action::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.config.slip > 0 && bucket.limited.is_multiple_of(self.config.slip) {
            Action::Slip
        } else {
            Action::Drop
        }
    }

    /// Prefixes tracked now (tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// Frees places in a full shard: every bucket idle for a second or more
/// (refilled, so nothing is lost), else the idlest eighth, so that a flood
/// of new prefixes costs a sort per few hundred packets, not a scan each.
fn make_room(buckets: &mut HashMap<[u8; 8], Bucket>, now: Instant) {
    let refilled = std::time::Duration::from_secs(1);
    buckets.retain(|_, b| now.saturating_duration_since(b.last) < refilled);
    if buckets.len() < PER_SHARD {
        return;
    }
    let mut by_age: Vec<(Instant, [u8; 8])> = buckets.iter().map(|(k, b)| (b.last, *k)).collect();
    let evict = (by_age.len() / 8).max(1);
    by_age.select_nth_unstable(evict - 1);
    for (_, key) in &by_age[..evict] {
        buckets.remove(key);
    }
}

/// The client's prefix as a key: the first 3 bytes of IPv4 (/24), the first
/// 7 of IPv6 (/56), with the family in the last byte.
fn prefix(address: IpAddr) -> [u8; 8] {
    let mut key = [0u8; 8];
    match address {
        IpAddr::V4(v4) => {
            key[..3].copy_from_slice(&v4.octets()[..3]);
            key[7] = 4;
        }
        IpAddr::V6(v6) => {
            key[..7].copy_from_slice(&v6.octets()[..7]);
            key[7] = 6;
        }
    }
    key
}

/// Truncates a wire-format response in place: header and question kept, TC
/// set, no records (the counts of answer, authority and additional zeroed).
/// `question_end` is where the question section ends.
pub fn slip(response: &mut Vec<u8>, question_end: usize) {
    if response.len() < 12 || question_end > response.len() || question_end < 12 {
        return;
    }
    response.truncate(question_end);
    response[2] |= 0x02;
    response[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(limiter: &Limiter, client: &str, n: usize, at: Instant) -> (usize, usize, usize) {
        let client: IpAddr = client.parse().unwrap();
        let mut counts = (0, 0, 0);
        for _ in 0..n {
            match limiter.check(client, at) {
                Action::Send => counts.0 += 1,
                Action::Slip => counts.1 += 1,
                Action::Drop => counts.2 += 1,
            }
        }
        counts
    }

    #[test]
    fn off_sends_everything() {
        let limiter = Limiter::new(RrlConfig::default());
        assert_eq!(
            run(&limiter, "192.0.2.1", 10_000, Instant::now()),
            (10_000, 0, 0)
        );
    }

    #[test]
    fn a_burst_past_the_budget_is_dropped_with_every_slip_th_truncated() {
        let limiter = Limiter::new(RrlConfig {
            responses_per_second: 100,
            slip: 2,
        });
        let t0 = Instant::now();
        assert_eq!(run(&limiter, "192.0.2.1", 300, t0), (100, 100, 100));
        // Same /24: same budget, already spent.
        assert_eq!(run(&limiter, "192.0.2.200", 10, t0).0, 0);
        // Another prefix has its own.
        assert_eq!(run(&limiter, "198.51.100.1", 100, t0), (100, 0, 0));
        // Half a second later, half the budget is back.
        assert_eq!(
            run(&limiter, "192.0.2.1", 100, t0 + Duration::from_millis(500)).0,
            50
        );
    }

    #[test]
    fn ipv6_prefixes_are_slash_56() {
        let limiter = Limiter::new(RrlConfig {
            responses_per_second: 10,
            slip: 0,
        });
        let t0 = Instant::now();
        assert_eq!(run(&limiter, "2001:db8:0:100::1", 20, t0), (10, 0, 10));
        assert_eq!(run(&limiter, "2001:db8:0:1ff::2", 5, t0).0, 0, "same /56");
        assert_eq!(
            run(&limiter, "2001:db8:0:200::1", 5, t0).0,
            5,
            "another /56"
        );
    }

    #[test]
    fn slip_keeps_the_question_and_sets_tc() {
        // header (id 0x1234, QR AA, 1 question, 2 answers) + question + answer bytes
        let mut response = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 2, 0, 0, 0, 1];
        let question = [3, b'w', b'e', b'b', 0, 0, 1, 0, 1];
        response.extend_from_slice(&question);
        let end = response.len();
        response.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 10, 0, 4, 10, 0, 0, 1]);
        slip(&mut response, end);
        assert_eq!(response.len(), end);
        assert_eq!(&response[..2], &[0x12, 0x34]);
        assert!(response[2] & 0x02 != 0, "TC");
        assert_eq!(&response[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }

    /// A flood of spoofed prefixes is bounded in memory and does not reset
    /// the budget of a client that keeps being limited.
    #[test]
    fn a_flood_of_prefixes_neither_grows_the_table_nor_resets_a_budget() {
        let limiter = Limiter::new(RrlConfig {
            responses_per_second: 10,
            slip: 0,
        });
        let t0 = Instant::now();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(run(&limiter, "192.0.2.1", 20, t0), (10, 0, 10));
        let mut sent = 0;
        for i in 0..(MAX_PREFIXES as u32 * 3) {
            // A microsecond apart: 0.3 s in all, 3 tokens refilled.
            let now = t0 + std::time::Duration::from_micros(u64::from(i));
            let spoofed = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)));
            limiter.check(spoofed, now);
            if i % 1000 == 0 && limiter.check(client, now) == Action::Send {
                sent += 1;
            }
        }
        assert!(limiter.tracked() <= MAX_PREFIXES, "{}", limiter.tracked());
        assert!(
            sent <= 4,
            "the limited client got {sent} answers through the flood (3 refilled)"
        );
    }
}
