//! `[metrics]`: the OpenMetrics/Prometheus endpoint (see `docs/metrics.md`). Off unless an
//! address is set.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ListenerConfig, Problems};

/// `[metrics]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct MetricsConfig {
    /// `ip:port` to serve `GET /metrics` on, such as `127.0.0.1:9180`. Unset: no endpoint, and
    /// nothing is counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl MetricsConfig {
    /// The address to listen on, when the endpoint is on and the address is valid.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.address.as_deref().and_then(|a| a.parse().ok())
    }

    pub(super) fn validate(&self, listeners: &[ListenerConfig], out: &mut Problems) {
        let Some(address) = &self.address else {
            return;
        };
        let Ok(addr) = address.parse::<SocketAddr>() else {
            out.add(
                "metrics.address",
                format!("`{address}` is not an ip:port address such as 127.0.0.1:9180"),
            );
            return;
        };
        if listeners
            .iter()
            .any(|l| l.address.parse::<SocketAddr>().ok() == Some(addr))
        {
            out.add(
                "metrics.address",
                format!("{addr} is also a [[listener]] address"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(address: Option<&str>, listeners: &[ListenerConfig]) -> Vec<(String, String)> {
        let mut out = Problems::default();
        MetricsConfig {
            address: address.map(str::to_string),
        }
        .validate(listeners, &mut out);
        out.0
    }

    #[test]
    fn off_by_default_and_a_valid_address_passes() {
        assert_eq!(MetricsConfig::default().socket_addr(), None);
        assert!(problems(None, &[]).is_empty());
        assert!(problems(Some("127.0.0.1:9180"), &[]).is_empty());
        assert!(problems(Some("[::1]:9180"), &[]).is_empty());
    }

    #[test]
    fn the_section_round_trips_through_the_effective_config() {
        let text = "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:1143\"\ntls = \"none\"\n\n[metrics]\naddress = \"127.0.0.1:9180\"\n";
        let path = std::path::Path::new("t.toml");
        let c = super::super::Config::parse(text, path).expect("valid");
        assert_eq!(c.metrics.socket_addr(), Some(([127, 0, 0, 1], 9180).into()));
        let again = super::super::Config::parse(&c.to_toml(), path).expect("round trip");
        assert_eq!(again, c);
    }

    #[test]
    fn bad_or_clashing_addresses_are_reported() {
        let p = problems(Some("localhost"), &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "metrics.address");
        let imap = ListenerConfig {
            address: "127.0.0.1:1143".into(),
            ..ListenerConfig::default()
        };
        let p = problems(Some("127.0.0.1:1143"), &[imap]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("listener"), "{p:?}");
    }
}
