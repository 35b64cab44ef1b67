//! The addresses of the coordinators a node or an operator talks to: one
//! alone, or several over one etcd UDB, of which one leads and the others
//! stand by (they do not listen until they lead).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::rpc::{ClientConfig, Connection};

/// Coordinator addresses, tried in turn from the one that answered last:
/// whoever accepts a connection leads (followers do not listen).
///
/// ```
/// use upshift::upgrade::Coordinators;
///
/// let all: Coordinators = "127.0.0.1:7400,127.0.0.1:7401".parse().unwrap();
/// assert_eq!(all.addrs().len(), 2);
/// assert_eq!(all.to_string(), "127.0.0.1:7400,127.0.0.1:7401");
/// ```
#[derive(Debug, Clone)]
pub struct Coordinators {
    addrs: Arc<[SocketAddr]>,
    /// The one that accepted last: tried first.
    last: Arc<AtomicUsize>,
}

impl Coordinators {
    /// These addresses; at least one.
    pub fn new(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Self, String> {
        let addrs: Arc<[SocketAddr]> = addrs.into_iter().collect();
        if addrs.is_empty() {
            return Err("no coordinator address".into());
        }
        Ok(Coordinators {
            addrs,
            last: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Every address, in the order given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Connects to the first coordinator that accepts, starting with the
    /// one that accepted last. The error names every address tried.
    pub async fn connect(&self, config: &ClientConfig) -> std::io::Result<Connection> {
        let first = self.last.load(Ordering::Relaxed);
        let mut refused = Vec::new();
        for i in 0..self.addrs.len() {
            let at = (first + i) % self.addrs.len();
            match Connection::connect_with(self.addrs[at], config.clone()).await {
                Ok(conn) => {
                    self.last.store(at, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(e) => refused.push(format!("{}: {e}", self.addrs[at])),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!(
                "no coordinator accepted a connection ({})",
                refused.join("; ")
            ),
        ))
    }
}

impl Coordinators {
    /// `conn` (made by [`connect`](Self::connect)) accepted but did not
    /// answer (a stalled coordinator's port still accepts): the next
    /// `connect` starts with the address after its own, so the caller
    /// moves on instead of waiting on it again. Clones share where they
    /// start: when another caller has meanwhile found one that answers,
    /// that one stays first — moving relative to wherever the shared
    /// cursor stands would send two callers that fail in turn back to the
    /// stalled one forever.
    pub fn passed_over(&self, conn: &Connection) {
        let Some(at) = conn
            .peer_addr()
            .and_then(|addr| self.addrs.iter().position(|a| *a == addr))
        else {
            return;
        };
        let next = (at + 1) % self.addrs.len();
        let _ = self
            .last
            .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl From<SocketAddr> for Coordinators {
    fn from(addr: SocketAddr) -> Self {
        Coordinators {
            addrs: Arc::from([addr]),
            last: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl std::str::FromStr for Coordinators {
    type Err = String;

    /// Comma-separated `HOST:PORT`s (IP addresses).
    fn from_str(text: &str) -> Result<Self, String> {
        let addrs = text
            .split(',')
            .map(|one| {
                one.trim()
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("{one:?} is not an IP:PORT address ({e})"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Coordinators::new(addrs)
    }
}

impl std::fmt::Display for Coordinators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, addr) in self.addrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_or_several_addresses_and_refuses_the_rest() {
        let one: Coordinators = "127.0.0.1:7400".parse().expect("one");
        assert_eq!(one.addrs(), &["127.0.0.1:7400".parse().expect("addr")]);
        let two: Coordinators = "127.0.0.1:1, [::1]:2".parse().expect("two");
        assert_eq!(two.to_string(), "127.0.0.1:1,[::1]:2");
        for bad in ["", "127.0.0.1", "a:1", "127.0.0.1:1,"] {
            assert!(bad.parse::<Coordinators>().is_err(), "{bad:?} was taken");
        }
    }

    #[tokio::test]
    async fn connects_to_whichever_listens_and_remembers_it() {
        let listening = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let addr = listening.local_addr().expect("addr");
        let all = Coordinators::new([closed, addr]).expect("two");
        let conn = all
            .connect(&ClientConfig::default())
            .await
            .expect("connect");
        assert_eq!(all.last.load(Ordering::Relaxed), 1);
        all.passed_over(&conn);
        assert_eq!(
            all.last.load(Ordering::Relaxed),
            0,
            "past the end, the first again"
        );
        // Passed over again, by a caller that connected before: the cursor
        // moved on already, and stays.
        all.passed_over(&conn);
        assert_eq!(all.last.load(Ordering::Relaxed), 0);
        let none = Coordinators::from(closed);
        let e = none
            .connect(&ClientConfig::default())
            .await
            .expect_err("nothing listens");
        assert!(e.to_string().contains(&closed.to_string()), "{e}");
    }
}
