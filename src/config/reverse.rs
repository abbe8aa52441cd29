//! `reverse_zones` and `reverse_fallback`: the address ranges whose
//! `in-addr.arpa` / `ip6.arpa` zones are served beside the forward zone,
//! and what an address no task holds answers.
//!
//! A reverse zone is cut at a label of the reverse name (RFC 1035 §3.5,
//! RFC 3596 §2.5): an octet of an IPv4 address, a nibble of an IPv6 one.
//! Any other prefix length would need RFC 2317's classless delegation,
//! which a Resolver forwarding rule cannot express: it is refused, with
//! the nearest lengths that work.

use std::net::IpAddr;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::{ConfigError, invalid};

/// One reverse zone: the addresses it covers and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseZone {
    /// The range as written (host bits clear).
    pub prefix: IpNet,
    /// `0.10.in-addr.arpa.` for `10.0.0.0/16`, lower case, fully qualified.
    pub origin: Name,
}

/// What the reverse zones answer for an address in them that no served
/// task holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReverseFallback {
    /// NXDOMAIN, as for any name the zone does not have.
    #[default]
    None,
    /// The name EC2 gives every private IPv4 address of the region's VPCs
    /// (`ip-10-0-1-5.ec2.internal`, `ip-10-0-1-5.REGION.compute.internal`),
    /// so that forwarding a whole range here keeps the VPC's own reverse
    /// names for everything that is not a task.
    Ec2 { region: String },
}

impl ReverseFallback {
    /// The domain EC2's private host names are under, for `Ec2`.
    pub fn ec2_domain(&self) -> Option<Name> {
        let ReverseFallback::Ec2 { region } = self else {
            return None;
        };
        let text = match region.as_str() {
            "us-east-1" => "ec2.internal.".to_owned(),
            other => format!("{other}.compute.internal."),
        };
        Name::from_ascii(text).ok()
    }

    /// The key's value as it is written: `none` or `ec2:REGION`.
    pub fn describe(&self) -> String {
        match self {
            ReverseFallback::None => "none".to_owned(),
            ReverseFallback::Ec2 { region } => format!("ec2:{region}"),
        }
    }
}

/// Parses `reverse_zones`: each entry a prefix on an octet (IPv4: /8, /16,
/// /24) or nibble (IPv6: a multiple of 4 up to /124) boundary, host bits
/// clear, no two overlapping, none overlapping the forward zone `origin`.
pub fn parse_zones(entries: &[String], origin: &Name) -> Result<Vec<ReverseZone>, ConfigError> {
    let mut zones: Vec<ReverseZone> = Vec::new();
    for entry in entries {
        let text = entry.trim();
        let fail = |reason: String| invalid("reverse_zones", text, reason);
        let prefix: IpNet = text.parse().map_err(|_| {
            fail("expected a prefix such as 10.0.0.0/16 or 2600:1f18:1234::/48".into())
        })?;
        let (step, least, most) = match prefix {
            IpNet::V4(_) => (8, 8, 24),
            IpNet::V6(_) => (4, 4, 124),
        };
        let len = prefix.prefix_len();
        if !len.is_multiple_of(step) || !(least..=most).contains(&len) {
            let unit = if step == 8 { "an octet" } else { "a nibble" };
            let below = (len / step * step).clamp(least, most);
            let above = (len.div_ceil(step) * step).clamp(least, most);
            let hint = match below == above {
                true => format!("/{below}"),
                false => format!("/{below} or /{above}"),
            };
            return Err(fail(format!(
                "a reverse zone is cut on {unit} boundary (lengths {least} to {most} in steps of \
                 {step}; classless RFC 2317 zones are not served): use {hint}"
            )));
        }
        if prefix.trunc() != prefix {
            return Err(fail(format!(
                "has host bits set: the range is {}",
                prefix.trunc()
            )));
        }
        let zone_origin = origin_of(&prefix).map_err(fail)?;
        if let Some(other) = zones
            .iter()
            .find(|z| z.prefix.contains(&prefix) || prefix.contains(&z.prefix))
        {
            return Err(fail(format!("overlaps {}", other.prefix)));
        }
        if zone_origin.zone_of(origin) || origin.zone_of(&zone_origin) {
            return Err(fail(format!(
                "its zone {zone_origin} overlaps the forward zone {origin}"
            )));
        }
        zones.push(ReverseZone {
            prefix,
            origin: zone_origin,
        });
    }
    Ok(zones)
}

/// Parses `reverse_fallback`: `none`, `ec2` (the region of the source,
/// `region`), or `ec2:REGION`.
pub fn parse_fallback(
    text: Option<&str>,
    region: Option<&str>,
    zones: &[ReverseZone],
) -> Result<ReverseFallback, ConfigError> {
    let Some(text) = text.map(str::trim) else {
        return Ok(ReverseFallback::None);
    };
    let fallback = match text.split_once(':') {
        None if text == "none" => return Ok(ReverseFallback::None),
        None if text == "ec2" => match region {
            Some(region) => ReverseFallback::Ec2 {
                region: region.to_owned(),
            },
            None => {
                return Err(invalid(
                    "reverse_fallback",
                    text,
                    "\"ec2\" takes the region of the one source, and none is known: \
                     write \"ec2:REGION\" (e.g. \"ec2:eu-west-1\")",
                ));
            }
        },
        Some(("ec2", region)) if super::sources::is_region(region) => ReverseFallback::Ec2 {
            region: region.to_owned(),
        },
        Some(("ec2", region)) => {
            return Err(invalid(
                "reverse_fallback",
                text,
                format!("{region:?} is not an AWS region name (e.g. us-east-1, eu-west-2)"),
            ));
        }
        _ => {
            return Err(invalid(
                "reverse_fallback",
                text,
                "expected \"none\", \"ec2\" or \"ec2:REGION\"",
            ));
        }
    };
    if !zones.iter().any(|z| z.prefix.addr().is_ipv4()) {
        return Err(invalid(
            "reverse_fallback",
            text,
            "EC2 names only IPv4 addresses: it needs an IPv4 range in reverse_zones",
        ));
    }
    Ok(fallback)
}

/// The reverse name of the first `prefix_len` bits of the prefix's address.
fn origin_of(prefix: &IpNet) -> Result<Name, String> {
    let labels: Vec<String> = match prefix.addr() {
        IpAddr::V4(ip) => (ip.octets().iter())
            .take(usize::from(prefix.prefix_len() / 8))
            .rev()
            .map(u8::to_string)
            .chain(["in-addr".into(), "arpa".into()])
            .collect(),
        IpAddr::V6(ip) => (ip.octets().iter())
            .flat_map(|b| [b >> 4, b & 0x0f])
            .take(usize::from(prefix.prefix_len() / 4))
            .collect::<Vec<u8>>()
            .into_iter()
            .rev()
            .map(|nibble| format!("{nibble:x}"))
            .chain(["ip6".into(), "arpa".into()])
            .collect(),
    };
    Name::from_ascii(format!("{}.", labels.join("."))).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(list: &[&str]) -> Result<Vec<ReverseZone>, String> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let origin = Name::from_ascii("local.").unwrap();
        parse_zones(&list, &origin).map_err(|e| e.to_string())
    }

    #[test]
    fn prefixes_become_their_reverse_zones() {
        let cases = [
            ("10.0.0.0/8", "10.in-addr.arpa."),
            ("10.0.0.0/16", "0.10.in-addr.arpa."),
            ("192.168.7.0/24", "7.168.192.in-addr.arpa."),
            ("2600:1f18:1234::/48", "4.3.2.1.8.1.f.1.0.0.6.2.ip6.arpa."),
            ("fd00::/8", "d.f.ip6.arpa."),
            ("2001:db8::/36", "0.8.b.d.0.1.0.0.2.ip6.arpa."),
        ];
        for (prefix, origin) in cases {
            let got = zones(&[prefix]).unwrap();
            assert_eq!(got[0].origin.to_string(), origin, "{prefix}");
        }
    }

    #[test]
    fn bad_ranges_name_the_key_and_why() {
        let cases = [
            ("10.0.0.0/12", "use /8 or /16"),
            ("10.0.0.0/32", "use /24"),
            ("10.0.0.0/4", "use /8"),
            ("2600::/50", "use /48 or /52"),
            ("10.0.1.0/16", "host bits set: the range is 10.0.0.0/16"),
            ("10.0.0.1", "expected a prefix"),
            ("nope", "expected a prefix"),
        ];
        for (prefix, why) in cases {
            let error = zones(&[prefix]).unwrap_err();
            assert!(error.contains("reverse_zones"), "{prefix}: {error}");
            assert!(error.contains(why), "{prefix}: {error}");
        }
        let overlap = zones(&["10.0.0.0/16", "10.0.4.0/24"]).unwrap_err();
        assert!(overlap.contains("overlaps 10.0.0.0/16"), "{overlap}");
        let list = vec!["10.0.0.0/16".to_string()];
        let inside = Name::from_ascii("ecs.0.10.in-addr.arpa.").unwrap();
        let error = parse_zones(&list, &inside).unwrap_err().to_string();
        assert!(error.contains("overlaps the forward zone"), "{error}");
    }

    #[test]
    fn the_fallback_names_ec2s_domain_for_the_region() {
        let v4 = zones(&["10.0.0.0/16"]).unwrap();
        let east = parse_fallback(Some("ec2"), Some("us-east-1"), &v4).unwrap();
        assert_eq!(east.ec2_domain().unwrap().to_string(), "ec2.internal.");
        let west = parse_fallback(Some("ec2:eu-west-1"), None, &v4).unwrap();
        assert_eq!(
            west.ec2_domain().unwrap().to_string(),
            "eu-west-1.compute.internal."
        );
        assert_eq!(west.describe(), "ec2:eu-west-1");
        assert_eq!(
            parse_fallback(Some("none"), None, &v4).unwrap(),
            ReverseFallback::None
        );
        assert_eq!(
            parse_fallback(None, None, &v4).unwrap(),
            ReverseFallback::None
        );
        for (text, region, why) in [
            ("ec2", None, "write \"ec2:REGION\""),
            ("ec2:mars", None, "not an AWS region"),
            ("dns", None, "expected \"none\""),
        ] {
            let error = parse_fallback(Some(text), region, &v4)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("reverse_fallback") && error.contains(why),
                "{error}"
            );
        }
        let v6 = zones(&["fd00::/8"]).unwrap();
        let error = parse_fallback(Some("ec2:eu-west-1"), None, &v6)
            .unwrap_err()
            .to_string();
        assert!(error.contains("only IPv4"), "{error}");
    }
}
