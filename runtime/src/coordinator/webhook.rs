//! Webhook notifications: each time a rollout is published, paused,
//! resumed, halted, aborted or final, or a rollback starts, the coordinator POSTs a JSON notice
//! to a URL, once the change is durable and in the order the changes were
//! made. Delivery runs on a thread of its own so a slow receiver never
//! holds a request; each notice is tried five times (1, 2, 4, 8 s apart)
//! and then dropped with an error in the log.
//!
//! ```json
//! {"kind":"halted","upgrade":3,"service":"Kv","from":1,"to":2,
//!  "reason":"node n1 failed to upgrade: disk full","by":null,"at_ms":1764500000000,
//!  "text":"upgrade #3 of Kv v1 -> v2 halted: node n1 failed to upgrade: disk full"}
//! ```
//!
//! Plain `http://` only: send it to a relay on the same private network
//! (the notice says what `upshift status` shows a reader).

use std::time::Duration;

use super::{Coordinator, Notice};
use crate::sync::lock;

/// Where notices go: `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    authority: String,
    path: String,
}

/// How long one delivery attempt may take to connect, send or read.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per notice.
const ATTEMPTS: u32 = 5;

impl Webhook {
    /// Parses `http://HOST[:PORT][/PATH]` (port 80 and `/` by default).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("webhook {url:?}: only http:// URLs are supported (send to a relay on a private network)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || ".-_:[]".contains(c);
        if authority.is_empty() || !authority.chars().all(valid) {
            return Err(format!(
                "webhook {url:?}: no host, or a host with characters a host does not have"
            ));
        }
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!(
                "webhook {url:?}: the path has spaces or control characters"
            ));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Webhook {
            authority,
            path: path.to_string(),
        })
    }

    /// POSTs `body`; the response's status code.
    fn post(&self, body: &str) -> std::io::Result<u16> {
        let response = crate::http::post(
            &self.authority,
            None,
            &self.path,
            "application/json",
            body.as_bytes(),
            TIMEOUT,
            crate::http::Body::Whole,
        )?;
        Ok(response.status)
    }
}

impl Coordinator {
    /// Tells `webhook` of every rollout published, paused, resumed,
    /// halted, aborted or final, as a JSON notice (see the module's
    /// documentation), once the change is durable and in order.
    pub fn with_webhook(self, webhook: Webhook) -> Self {
        let (notices, arrive) = std::sync::mpsc::channel::<Notice>();
        *lock(&self.store.notify) = Some(notices);
        let spawned = std::thread::Builder::new()
            .name("upshift-webhook".into())
            .spawn(move || {
                // Ends when the coordinator, and so the sender, is gone.
                for notice in arrive {
                    deliver(&webhook, &notice);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the webhook's thread; no notice will be sent");
        }
        self
    }
}

fn deliver(webhook: &Webhook, notice: &Notice) {
    let body = json(notice);
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        match webhook.post(&body) {
            Ok(code) if (200..300).contains(&code) => return,
            Ok(code) => tracing::warn!(code, attempt, "the webhook refused a notice"),
            Err(e) => tracing::warn!(error = %e, attempt, "the webhook could not be reached"),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(wait);
            wait *= 2;
        }
    }
    tracing::error!(
        upgrade = notice.upgrade,
        kind = notice.kind,
        "a notice was not delivered after {ATTEMPTS} attempts; it is dropped"
    );
}

/// The notice as one JSON object.
fn json(n: &Notice) -> String {
    let text = format!(
        "upgrade #{} of {} v{} -> v{} {}{}{}",
        n.upgrade,
        n.service,
        n.from,
        n.to,
        n.kind,
        n.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default(),
        n.by.as_deref()
            .map(|b| format!(" (by {b})"))
            .unwrap_or_default()
    );
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), string);
    format!(
        "{{\"kind\":{},\"upgrade\":{},\"service\":{},\"from\":{},\"to\":{},\"reason\":{},\"by\":{},\"at_ms\":{},\"text\":{}}}",
        string(n.kind),
        n.upgrade,
        string(&n.service),
        n.from,
        n.to,
        opt(&n.reason),
        opt(&n.by),
        n.at_ms,
        string(&text)
    )
}

/// A JSON string.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host() {
        assert_eq!(
            Webhook::parse("http://relay.local:8080/hooks/upshift"),
            Ok(Webhook {
                authority: "relay.local:8080".into(),
                path: "/hooks/upshift".into()
            })
        );
        assert_eq!(
            Webhook::parse("http://10.0.0.1"),
            Ok(Webhook {
                authority: "10.0.0.1:80".into(),
                path: "/".into()
            })
        );
        for bad in [
            "https://x/",
            "ftp://x",
            "http://",
            "http://a b/",
            "http://x/a b",
        ] {
            assert!(Webhook::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notices_are_json_with_their_text() {
        let n = Notice {
            kind: "halted",
            upgrade: 3,
            service: "Kv".into(),
            from: 1,
            to: 2,
            reason: Some("node \"n1\" failed:\ndisk full".into()),
            by: None,
            at_ms: 5,
        };
        assert_eq!(
            json(&n),
            "{\"kind\":\"halted\",\"upgrade\":3,\"service\":\"Kv\",\"from\":1,\"to\":2,\
             \"reason\":\"node \\\"n1\\\" failed:\\ndisk full\",\"by\":null,\"at_ms\":5,\
             \"text\":\"upgrade #3 of Kv v1 -> v2 halted: node \\\"n1\\\" failed:\\ndisk full\"}"
        );
    }
}
