//! How ECS names become DNS labels.
//!
//! ECS allows names (services, clusters, port mappings, tags) that are not
//! valid host-name labels: upper case, `_`, `.`, and up to 255 characters.
//! Each is mapped to one label by a fixed rule, so the same input always gives
//! the same name, whatever the source.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// The longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Maps `raw` to a label of at most `max_len` bytes: lower-case; every
/// character outside `[a-z0-9-]` becomes `-`; runs of `-` collapse to one;
/// leading and trailing `-` are trimmed. A label still longer than `max_len`
/// keeps its first `max_len - 9` bytes, then `-` and 8 hex digits of a hash of
/// the whole label, so that long names that differ only at the end stay
/// distinct. Returns `None` when nothing is left (e.g. `"___"`).
pub fn label(raw: &str, max_len: usize) -> Option<Cow<'_, str>> {
    if is_normal(raw, max_len) {
        // Most names are labels already (ECS ids, lower-case service names):
        // no copy.
        return Some(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        return None;
    }
    if out.len() > max_len {
        let digest = Sha256::digest(out.as_bytes());
        let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        out.truncate(max_len - 9);
        out.push('-');
        out.push_str(&hash);
    }
    Some(Cow::Owned(out))
}

/// Whether `raw` is what [`label`] would make of it.
fn is_normal(raw: &str, max_len: usize) -> bool {
    let bytes = raw.as_bytes();
    if bytes.is_empty() || bytes.len() > max_len {
        return false;
    }
    // One pass: allowed bytes only, no `-` first, last or twice in a row.
    let mut previous = b'-';
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => {}
            b'-' if previous != b'-' => {}
            _ => return false,
        }
        previous = b;
    }
    previous != b'-'
}

/// A full-length label: services, clusters, task ids, aliases.
pub fn host_label(raw: &str) -> Option<Cow<'_, str>> {
    label(raw, MAX_LABEL)
}

/// The `_<port>` label of an SRV owner: the port mapping's name when it has
/// one, else the container port number. One byte shorter than a label, for
/// the leading `_`.
pub fn port_label(mapping_name: Option<&str>, container_port: u16) -> String {
    let named = mapping_name.and_then(|n| label(n, MAX_LABEL - 1));
    match named {
        Some(name) => format!("_{name}"),
        None => format!("_{container_port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let long_a = format!("{}a", "x".repeat(70));
        let long_b = format!("{}b", "x".repeat(70));
        let table: &[(&str, Option<&str>)] = &[
            ("web", Some("web")),
            ("Web-API", Some("web-api")),
            ("my_service", Some("my-service")),
            ("a__b..c", Some("a-b-c")),
            ("--edge--", Some("edge")),
            ("_x_", Some("x")),
            ("svc.v2", Some("svc-v2")),
            ("Ünïcode", Some("n-code")),
            ("0123", Some("0123")),
            ("___", None),
            ("", None),
            (&"y".repeat(63), Some(&"y".repeat(63))),
        ];
        for (raw, want) in table {
            assert_eq!(host_label(raw).as_deref(), *want, "label({raw:?})");
        }
        let a = host_label(&long_a).unwrap();
        let b = host_label(&long_b).unwrap();
        assert_eq!(a.len(), 63, "{a}");
        assert!(a.starts_with(&"x".repeat(54)), "{a}");
        assert_eq!(a.as_bytes()[54], b'-', "{a}");
        assert!(a[55..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b, "long names differing at the end must stay distinct");
        assert_eq!(a, host_label(&long_a.to_uppercase()).unwrap(), "stable");
    }

    #[test]
    fn port_labels() {
        let table: &[(Option<&str>, u16, &str)] = &[
            (Some("http"), 8080, "_http"),
            (Some("Web_UI"), 80, "_web-ui"),
            (None, 8080, "_8080"),
            (Some("___"), 53, "_53"),
        ];
        for (name, port, want) in table {
            assert_eq!(port_label(*name, *port), *want);
        }
        assert_eq!(port_label(Some(&"p".repeat(80)), 1).len(), MAX_LABEL);
    }
}
