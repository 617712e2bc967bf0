//! Connection admission: caps on connections open at once, on connections not yet logged in,
//! and per source address. Checked when a TCP connection is accepted, before a byte is read,
//! so a refused client costs one accept and one short reply.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::Limits;

/// Why a connection was refused (sent to the client in a 503 reply, and logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server has too many connections")]
    TooManyConnections,
    #[error("the server has too many connections that have not logged in")]
    TooManyPendingLogins,
    #[error("too many connections from your address")]
    TooManyFromAddress,
}

#[derive(Default)]
struct Counts {
    total: usize,
    pending: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Counts the open connections. Its own lock, never held with the registry's.
pub struct Gate {
    max_total: usize,
    max_pending: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
}

/// A cap of 0 is no cap.
fn reached(count: usize, cap: usize) -> bool {
    cap != 0 && count >= cap
}

impl Gate {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Gate {
            max_total: limits.max_connections,
            max_pending: limits.max_pending_logins,
            max_per_address: limits.max_connections_per_address,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent under every panic-free path; a poisoned lock only means a
        // panic elsewhere, after which counting on is still right.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection from `address`, or says which cap it hits. The permit counts the
    /// connection as open (and not logged in) until it is dropped.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Permit, Refused> {
        let mut counts = self.lock();
        if reached(counts.total, self.max_total) {
            return Err(Refused::TooManyConnections);
        }
        if reached(counts.pending, self.max_pending) {
            return Err(Refused::TooManyPendingLogins);
        }
        let from_address = counts.by_address.get(&address).copied().unwrap_or(0);
        if reached(from_address, self.max_per_address) {
            return Err(Refused::TooManyFromAddress);
        }
        counts.total += 1;
        counts.pending += 1;
        counts.by_address.insert(address, from_address + 1);
        Ok(Permit {
            gate: self.clone(),
            address,
            logged_in: AtomicBool::new(false),
        })
    }

    /// (open connections, of which not logged in).
    pub fn counts(&self) -> (usize, usize) {
        let counts = self.lock();
        (counts.total, counts.pending)
    }
}

/// One admitted connection. Shared by the HTTP connection and, after an upgrade, its WebSocket
/// task, so the connection counts as open until both are done.
pub struct Permit {
    gate: Arc<Gate>,
    address: IpAddr,
    logged_in: AtomicBool,
}

impl Permit {
    /// The connection's session logged in: it no longer counts against the pending-login cap.
    pub fn logged_in(&self) {
        if !self.logged_in.swap(true, Ordering::Relaxed) {
            self.gate.lock().pending -= 1;
        }
    }

    pub fn address(&self) -> IpAddr {
        self.address
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        counts.total -= 1;
        if !*self.logged_in.get_mut() {
            counts.pending -= 1;
        }
        if let Some(n) = counts.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, pending: usize, per_address: usize) -> Limits {
        Limits {
            max_connections: total,
            max_pending_logins: pending,
            max_connections_per_address: per_address,
            ..Limits::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn per_address_cap_leaves_other_addresses_alone() {
        let gate = Gate::new(&limits(0, 0, 2));
        let a1 = gate.admit(A).unwrap();
        let _a2 = gate.admit(A).unwrap();
        assert_eq!(gate.admit(A).err(), Some(Refused::TooManyFromAddress));
        let _b = gate.admit(B).unwrap();
        drop(a1);
        assert!(gate.admit(A).is_ok(), "a closed connection frees its slot");
    }

    #[test]
    fn logged_in_connections_leave_the_pending_cap() {
        let gate = Gate::new(&limits(3, 1, 0));
        let a = gate.admit(A).unwrap();
        assert_eq!(gate.admit(B).err(), Some(Refused::TooManyPendingLogins));
        a.logged_in();
        a.logged_in();
        assert_eq!(gate.counts(), (1, 0));
        let b = gate.admit(B).unwrap();
        b.logged_in();
        let _c = gate.admit(B).unwrap();
        assert_eq!(gate.admit(A).err(), Some(Refused::TooManyConnections));
        drop(a);
        drop(b);
        assert_eq!(gate.counts(), (1, 1));
    }

    #[test]
    fn zero_means_no_cap() {
        let gate = Gate::new(&limits(0, 0, 0));
        let permits: Vec<Permit> = (0..1000).map(|_| gate.admit(A).unwrap()).collect();
        assert_eq!(gate.counts(), (1000, 1000));
        drop(permits);
        assert_eq!(gate.counts(), (0, 0));
    }
}
