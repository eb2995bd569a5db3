//! obshell's generic ids: one decimal string naming a DAG, node or sub-task and where it lives.
//!
//! - cluster: `"1" + id`
//! - agent-local, IPv4: `"2" + %010d(ipv4 as u32) + %05d(port) + id`
//! - agent-local, IPv6: `"3" + %039d(ipv6 as u128) + %05d(port) + id`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where the identified object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOrigin {
    /// Stored in the cluster.
    Cluster,
    /// Local to the agent at this address.
    Agent { ip: IpAddr, port: u16 },
}

/// A decoded generic id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericId {
    pub origin: IdOrigin,
    pub id: u64,
}

/// Why a generic id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid generic id '{id}': {reason}")]
pub struct InvalidGenericId {
    pub id: String,
    pub reason: &'static str,
}

impl GenericId {
    /// An agent-local id.
    pub fn agent(ip: IpAddr, port: u16, id: u64) -> GenericId {
        GenericId {
            origin: IdOrigin::Agent { ip, port },
            id,
        }
    }

    /// Encodes as obshell does.
    pub fn encode(&self) -> String {
        match self.origin {
            IdOrigin::Cluster => format!("1{}", self.id),
            IdOrigin::Agent {
                ip: IpAddr::V4(ip),
                port,
            } => format!("2{:010}{:05}{}", u32::from(ip), port, self.id),
            IdOrigin::Agent {
                ip: IpAddr::V6(ip),
                port,
            } => format!("3{:039}{:05}{}", u128::from(ip), port, self.id),
        }
    }

    /// Decodes `text`, refusing anything whose re-encoding differs (leading zeros in the
    /// id, out-of-range addresses or ports, non-digits).
    ///
    /// # Errors
    /// [`InvalidGenericId`] naming the problem.
    pub fn decode(text: &str) -> Result<GenericId, InvalidGenericId> {
        let invalid = |reason| InvalidGenericId {
            id: text.to_string(),
            reason,
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("must be a non-empty decimal string"));
        }
        let (origin, rest) = match &text[..1] {
            "1" => (IdOrigin::Cluster, &text[1..]),
            "2" => {
                if text.len() <= 16 {
                    return Err(invalid("too short for an IPv4 agent id"));
                }
                let ip: u32 = text[1..11]
                    .parse()
                    .map_err(|_| invalid("IPv4 address out of range"))?;
                let port: u16 = text[11..16]
                    .parse()
                    .map_err(|_| invalid("port out of range"))?;
                let origin = IdOrigin::Agent {
                    ip: IpAddr::V4(Ipv4Addr::from(ip)),
                    port,
                };
                (origin, &text[16..])
            }
            "3" => {
                if text.len() <= 45 {
                    return Err(invalid("too short for an IPv6 agent id"));
                }
                let ip: u128 = text[1..40]
                    .parse()
                    .map_err(|_| invalid("IPv6 address out of range"))?;
                let port: u16 = text[40..45]
                    .parse()
                    .map_err(|_| invalid("port out of range"))?;
                let origin = IdOrigin::Agent {
                    ip: IpAddr::V6(Ipv6Addr::from(ip)),
                    port,
                };
                (origin, &text[45..])
            }
            _ => return Err(invalid("unknown prefix (expected 1, 2 or 3)")),
        };
        if rest.is_empty() {
            return Err(invalid("missing id"));
        }
        let id: u64 = rest.parse().map_err(|_| invalid("id out of range"))?;
        let decoded = GenericId { origin, id };
        if decoded.encode() != text {
            return Err(invalid("not in canonical form"));
        }
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_spec_example() {
        let id = GenericId::agent(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 2886, 9);
        assert_eq!(id.encode(), "22130706433028869");
        assert_eq!(GenericId::decode("22130706433028869").unwrap(), id);
    }

    #[test]
    fn round_trips_cluster_and_ipv6() {
        let cluster = GenericId {
            origin: IdOrigin::Cluster,
            id: 42,
        };
        assert_eq!(cluster.encode(), "142");
        assert_eq!(GenericId::decode("142").unwrap(), cluster);
        let v6 = GenericId::agent(IpAddr::V6(Ipv6Addr::LOCALHOST), 2886, 7);
        let text = v6.encode();
        assert_eq!(text.len(), 1 + 39 + 5 + 1);
        assert_eq!(GenericId::decode(&text).unwrap(), v6);
    }

    #[test]
    fn refuses_malformed_ids() {
        for (text, reason) in [
            ("", "must be a non-empty decimal string"),
            ("abc", "must be a non-empty decimal string"),
            ("-1", "must be a non-empty decimal string"),
            ("1", "missing id"),
            ("9123", "unknown prefix (expected 1, 2 or 3)"),
            ("2213070643302886", "too short for an IPv4 agent id"),
            ("29999999999028869", "IPv4 address out of range"),
            ("22130706433999999", "port out of range"),
            ("221307064330288609", "not in canonical form"),
            ("199999999999999999999999", "id out of range"),
        ] {
            assert_eq!(
                GenericId::decode(text).unwrap_err().reason,
                reason,
                "{text}"
            );
        }
    }
}
