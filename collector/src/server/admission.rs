//! What a client may hold on a listener, so that nothing sent without a certificate can
//! exhaust the collector: TLS handshakes in progress (all together and per source address),
//! connections of enrolled agents (their own budget, never taken by strangers), connections
//! without a certificate (all together, per address, a rate per address, an idle timeout and a
//! lifetime). A connection beyond a budget is closed at once; what was shed is logged as counts
//! every few seconds, not one line per connection (a flood must not fill the disk with logs).

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use crate::config::Limits;

/// Most source addresses whose rate is tracked; beyond, new addresses are refused until old
/// entries age out (bounded memory beats fairness under an attack from many addresses).
const MAX_TRACKED_ADDRESSES: usize = 65_536;
/// At most one summary of shed connections per this interval.
const SHED_LOG_EVERY: Duration = Duration::from_secs(10);

/// A source address as the limits count it: an IPv4 address, or an IPv6 /64 (one site).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(u128);

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(u128::from(u32::from(v4))),
                // Bit 32 keeps a /64 apart from every IPv4 key.
                None => AddressKey((u128::from(v6) & !((1u128 << 64) - 1)) | (1u128 << 32)),
            },
        }
    }
}

/// Why a connection was closed before any request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    Handshakes,
    HandshakesOfAddress,
    AgentConnections,
    Unauthenticated,
    UnauthenticatedOfAddress,
    UnauthenticatedRate,
}

impl Shed {
    const ALL: [Shed; 6] = [
        Shed::Handshakes,
        Shed::HandshakesOfAddress,
        Shed::AgentConnections,
        Shed::Unauthenticated,
        Shed::UnauthenticatedOfAddress,
        Shed::UnauthenticatedRate,
    ];

    fn name(self) -> &'static str {
        match self {
            Shed::Handshakes => "handshakes_full",
            Shed::HandshakesOfAddress => "handshakes_of_address_full",
            Shed::AgentConnections => "agent_connections_full",
            Shed::Unauthenticated => "unauthenticated_full",
            Shed::UnauthenticatedOfAddress => "unauthenticated_of_address_full",
            Shed::UnauthenticatedRate => "unauthenticated_rate_of_address",
        }
    }
}

/// A token bucket per source address: `per_minute` at once, refilled evenly over a minute.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<AddressKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; `false` when its bucket is empty.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let refill = |bucket: &mut Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
            bucket.updated = now;
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = AddressKey::of(ip);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED_ADDRESSES {
            // Forget the addresses whose bucket is full again: they owe nothing.
            buckets.retain(|_, bucket| {
                refill(bucket);
                bucket.tokens < capacity
            });
            if buckets.len() >= MAX_TRACKED_ADDRESSES {
                return false;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        refill(bucket);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The budgets of one listener.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    handshakes: Arc<Semaphore>,
    agents: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    of_address: Mutex<HashMap<AddressKey, PerAddress>>,
    new_unauthenticated: RateLimiter,
    shed: [AtomicU64; Shed::ALL.len()],
    shed_logged: Mutex<Option<Instant>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PerAddress {
    handshakes: usize,
    unauthenticated: usize,
}

/// What a connection holds; given back when it is dropped.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    _slot: Option<AddressSlot>,
}

#[derive(Debug)]
struct AddressSlot {
    admission: Arc<Admission>,
    key: AddressKey,
    handshake: bool,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.admission.address_map();
        if let Some(counts) = map.get_mut(&self.key) {
            if self.handshake {
                counts.handshakes = counts.handshakes.saturating_sub(1);
            } else {
                counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
            }
            if counts.handshakes == 0 && counts.unauthenticated == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Admission {
            limits: limits.clone(),
            handshakes: Arc::new(Semaphore::new(limits.max_tls_handshakes)),
            agents: Arc::new(Semaphore::new(limits.max_agent_connections)),
            unauthenticated: Arc::new(Semaphore::new(limits.max_unauthenticated_connections)),
            of_address: Mutex::new(HashMap::new()),
            new_unauthenticated: RateLimiter::new(limits.unauthenticated_per_address_per_minute),
            shed: Default::default(),
            shed_logged: Mutex::new(None),
        })
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.tls_handshake_timeout_seconds)
    }

    fn address_map(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, PerAddress>> {
        self.of_address.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A TCP connection just accepted: may it start a TLS handshake?
    pub fn admit_handshake(self: &Arc<Self>, peer: SocketAddr) -> Result<Ticket, Shed> {
        let permit = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.note(Shed::Handshakes))?;
        let slot = self
            .take_address_slot(peer, true)
            .ok_or_else(|| self.note(Shed::HandshakesOfAddress))?;
        Ok(Ticket {
            _permit: permit,
            _slot: Some(slot),
        })
    }

    /// A finished handshake: an agent (with a certificate our CA signed; rustls checked it)
    /// takes from the agents' budget, any other client from the budgets without certificate.
    pub fn admit_connection(
        self: &Arc<Self>,
        peer: SocketAddr,
        authenticated: bool,
    ) -> Result<Ticket, Shed> {
        if authenticated {
            let permit = self
                .agents
                .clone()
                .try_acquire_owned()
                .map_err(|_| self.note(Shed::AgentConnections))?;
            return Ok(Ticket {
                _permit: permit,
                _slot: None,
            });
        }
        if !self.new_unauthenticated.allow(peer.ip(), Instant::now()) {
            return Err(self.note(Shed::UnauthenticatedRate));
        }
        let permit = self
            .unauthenticated
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.note(Shed::Unauthenticated))?;
        let slot = self
            .take_address_slot(peer, false)
            .ok_or_else(|| self.note(Shed::UnauthenticatedOfAddress))?;
        Ok(Ticket {
            _permit: permit,
            _slot: Some(slot),
        })
    }

    fn take_address_slot(
        self: &Arc<Self>,
        peer: SocketAddr,
        handshake: bool,
    ) -> Option<AddressSlot> {
        let key = AddressKey::of(peer.ip());
        let mut map = self.address_map();
        let counts = map.entry(key).or_default();
        let (count, max) = if handshake {
            (
                &mut counts.handshakes,
                self.limits.max_tls_handshakes_per_address,
            )
        } else {
            (
                &mut counts.unauthenticated,
                self.limits.max_unauthenticated_per_address,
            )
        };
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            admission: self.clone(),
            key,
            handshake,
        })
    }

    /// The stream tonic serves: unauthenticated ones get the idle timeout and the lifetime.
    pub fn guard(&self, tls: TlsStream<TcpStream>, ticket: Ticket, authenticated: bool) -> Guarded {
        let watch = (!authenticated).then(|| {
            let idle = Duration::from_secs(self.limits.unauthenticated_idle_timeout_seconds);
            let lifetime = Duration::from_secs(self.limits.unauthenticated_max_lifetime_seconds);
            Watch {
                idle,
                idle_timer: Box::pin(tokio::time::sleep(idle)),
                lifetime: Box::pin(tokio::time::sleep(lifetime)),
            }
        });
        Guarded {
            inner: tls,
            watch,
            _ticket: ticket,
        }
    }

    /// Counts a shed connection and logs the counts at most every [`SHED_LOG_EVERY`].
    fn note(&self, why: Shed) -> Shed {
        let index = Shed::ALL.iter().position(|s| *s == why).unwrap_or(0);
        self.shed[index].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut logged = self.shed_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.is_some_and(|at| now.duration_since(at) < SHED_LOG_EVERY) {
            return why;
        }
        *logged = Some(now);
        let counts: Vec<String> = Shed::ALL
            .iter()
            .zip(&self.shed)
            .map(|(s, n)| format!("{}={}", s.name(), n.swap(0, Ordering::Relaxed)))
            .collect();
        tracing::warn!(
            shed = %counts.join(" "),
            "connections closed before any request: a limit of [limits] was reached"
        );
        why
    }
}

struct Watch {
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    lifetime: Pin<Box<Sleep>>,
}

impl Watch {
    /// An error once the lifetime is over or the client has been silent too long; registers
    /// the task to be woken then.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.lifetime.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection without certificate reached its lifetime",
            ));
        }
        if self.idle_timer.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection without certificate idle too long",
            ));
        }
        None
    }
}

/// A TLS connection with what it holds; dropping it gives the budget back.
pub struct Guarded {
    inner: TlsStream<TcpStream>,
    watch: Option<Watch>,
    _ticket: Ticket,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("authenticated", &self.watch.is_none())
            .finish_non_exhaustive()
    }
}

impl Connected for Guarded {
    type ConnectInfo = TlsConnectInfo<TcpConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(watch) = &mut this.watch
            && watch.lifetime.is_elapsed()
            && let Some(error) = watch.expired(cx)
        {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(watch) = &mut this.watch
                    && buf.filled().len() > before
                {
                    let next = Instant::now() + watch.idle;
                    watch.idle_timer.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.watch.as_mut().and_then(|w| w.expired(cx)) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            // A client that reads nothing must not hold us either.
            Poll::Pending => match this.watch.as_mut().and_then(|w| w.expired(cx)) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.watch.as_mut().and_then(|w| w.expired(cx)) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The soft limit on open files of this process (Linux), to warn when the budgets exceed it.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_allows_a_burst_then_refills_evenly() {
        let limiter = RateLimiter::new(3);
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow(ip, t0)));
        assert!(!limiter.allow(ip, t0), "burst spent");
        assert!(
            limiter.allow(other, t0),
            "another address has its own bucket"
        );
        assert!(!limiter.allow(ip, t0 + Duration::from_secs(10)));
        assert!(
            limiter.allow(ip, t0 + Duration::from_secs(21)),
            "one per 20 s"
        );
    }

    #[test]
    fn an_ipv6_site_counts_as_one_address() {
        let a = AddressKey::of("2001:db8:1:2::1".parse().expect("ip"));
        let b = AddressKey::of("2001:db8:1:2:ffff::9".parse().expect("ip"));
        let c = AddressKey::of("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = AddressKey::of("::ffff:192.0.2.7".parse().expect("ip"));
        assert_eq!(mapped, AddressKey::of("192.0.2.7".parse().expect("ip")));
    }

    #[test]
    fn budgets_are_given_back_and_kept_apart() {
        let limits = Limits {
            max_tls_handshakes: 3,
            max_tls_handshakes_per_address: 2,
            max_unauthenticated_connections: 1,
            max_agent_connections: 1,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let a: SocketAddr = "192.0.2.1:1000".parse().expect("addr");
        let b: SocketAddr = "192.0.2.2:1000".parse().expect("addr");
        let h1 = admission.admit_handshake(a).expect("first");
        let _h2 = admission.admit_handshake(a).expect("second");
        assert_eq!(
            admission.admit_handshake(a).err(),
            Some(Shed::HandshakesOfAddress)
        );
        let _h3 = admission.admit_handshake(b).expect("another address");
        drop(h1);
        assert!(admission.admit_handshake(a).is_ok(), "given back");

        let _stranger = admission
            .admit_connection(a, false)
            .expect("one without cert");
        assert_eq!(
            admission.admit_connection(b, false).err(),
            Some(Shed::Unauthenticated)
        );
        assert!(
            admission.admit_connection(b, true).is_ok(),
            "agents have their own budget"
        );
    }
}
