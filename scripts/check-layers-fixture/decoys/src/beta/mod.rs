//! Talks about [`crate::alpha`] in a doc comment only.
mod inner;

pub struct Thing;

/* A block comment naming crate::gamma::G and super::gamma. */
pub const TEXT: &str = "crate::gamma::G";
pub const RAW: &str = r#"crate::alpha::x() and "quotes""#;
pub const CH: char = '"';
