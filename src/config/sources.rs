//! `[[sources]]`: several accounts and regions read by the ECS source, each
//! a table with its own name, region, clusters, assumed role and events
//! queue, served in one zone.
//!
//! In a file the key is an array of tables; as `ECS_DNS_SOURCES` or
//! `--sources` it is the same list as JSON (a container is configured by
//! its environment). Clap takes the text as it is and [`resolve`] parses
//! it, so that a syntax error never echoes the text back: it may hold
//! external IDs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// The `sources` key as given: tables (a file) or their JSON (a variable
/// or flag, parsed by [`resolve`]).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SourceTables {
    Tables(Vec<SourceTable>),
    Json(String),
}

impl std::str::FromStr for SourceTables {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(SourceTables::Json(text.to_owned()))
    }
}

/// One `[[sources]]` table as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTable {
    /// A host-name label: the source's names are `<service>.<cluster>.<name>.Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Redacted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_queue: Option<String>,
    /// Another endpoint for this source's AWS calls (a VPC endpoint's DNS
    /// name, an emulator); default: the SDK's, or `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// A value that is never shown: `Debug` and [`Redacted::shown`] print
/// `<redacted>`. Serialized as itself (a file written back must work);
/// `check-config` prints [`Redacted::shown`].
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(value: String) -> Redacted {
        Redacted(value)
    }

    /// The value itself, for the one call that sends it (STS).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is shown in its place.
    pub fn shown() -> Redacted {
        Redacted("<redacted>".to_owned())
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A role to assume with STS, with the default credential chain's identity.
#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRole {
    pub role_arn: String,
    /// The account the role is in (from its ARN): where the source's tasks
    /// are.
    pub account: String,
    pub external_id: Option<Redacted>,
}

/// One source as [`resolve`] checked it; the caller adds what all sources
/// share (request timeout, events timing).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSource {
    pub name: String,
    pub region: Option<String>,
    pub clusters: Vec<String>,
    pub role: Option<AssumeRole>,
    pub events_queue: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Checks every table: each error names `sources`, the source and the
/// field. Never quotes an external ID.
pub fn resolve(tables: &SourceTables) -> Result<Vec<CheckedSource>, ConfigError> {
    let tables = match tables {
        SourceTables::Tables(tables) => tables.clone(),
        SourceTables::Json(text) => {
            serde_json::from_str::<Vec<SourceTable>>(text).map_err(|e| {
                // serde_json's message names the line, column and field, never
                // the value.
                invalid(
                    "sources",
                    "(JSON)",
                    format!("not a JSON list of source tables: {e}"),
                )
            })?
        }
    };
    if tables.is_empty() {
        return Err(invalid(
            "sources",
            "[]",
            "list at least one source, or leave `sources` out for one source of the flat keys",
        ));
    }
    let mut checked: Vec<CheckedSource> = Vec::with_capacity(tables.len());
    for (index, table) in tables.iter().enumerate() {
        let source = check_table(index, table)?;
        if checked.iter().any(|c| c.name == source.name) {
            return Err(invalid(
                "sources",
                &source.name,
                "two sources have this name: each names its clusters apart and must be unique",
            ));
        }
        checked.push(source);
    }
    Ok(checked)
}

fn check_table(index: usize, table: &SourceTable) -> Result<CheckedSource, ConfigError> {
    let Some(name) = table.name.clone() else {
        return Err(invalid(
            "sources",
            format!("#{}", index + 1),
            "this source has no `name` (a host-name label, e.g. \"prod\")",
        ));
    };
    let fail =
        |field: &str, reason: String| invalid("sources", &name, format!("{field}: {reason}"));
    if !is_label(&name) {
        return Err(fail(
            "name",
            "must be a host-name label: 1 to 63 of a-z, 0-9 and -, not starting or ending with -"
                .into(),
        ));
    }
    if let Some(region) = &table.region
        && !is_region(region)
    {
        return Err(fail(
            "region",
            format!("{region:?} is not an AWS region name (e.g. us-east-1, eu-west-2)"),
        ));
    }
    let clusters = table.clusters.clone().unwrap_or_default();
    if clusters.iter().any(|c| c.trim().is_empty()) {
        return Err(fail("clusters", "a cluster name cannot be empty".into()));
    }
    let role = match (&table.role_arn, &table.external_id) {
        (None, Some(_)) => {
            return Err(fail(
                "external_id",
                "is only sent when a role is assumed: set role_arn too".into(),
            ));
        }
        (None, None) => None,
        (Some(arn), external_id) => {
            let account = role_account(arn).ok_or_else(|| {
                fail(
                    "role_arn",
                    format!(
                        "{arn:?} is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)"
                    ),
                )
            })?;
            if let Some(id) = external_id
                && !is_external_id(id.expose())
            {
                return Err(fail(
                    "external_id",
                    "must be 2 to 1224 of letters, digits and +=,.@:/- (the value is not shown)"
                        .into(),
                ));
            }
            Some(AssumeRole {
                role_arn: arn.clone(),
                account,
                external_id: external_id.clone(),
            })
        }
    };
    for (field, url) in [
        ("events_queue", &table.events_queue),
        ("endpoint_url", &table.endpoint_url),
    ] {
        if let Some(url) = url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(fail(field, format!("{url:?} is not an http(s) URL")));
        }
    }
    Ok(CheckedSource {
        name,
        region: table.region.clone(),
        clusters,
        role,
        events_queue: table.events_queue.clone(),
        endpoint_url: table.endpoint_url.clone(),
    })
}

/// A lower-case host-name label (names are served as written).
fn is_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-2`, `cn-north-1`: letters
/// in dashed words, then a number.
pub(super) fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The account of `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
fn role_account(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("role/")?;
    let ok = arn_ == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.ends_with('/');
    ok.then(|| account.to_owned())
}

/// STS's pattern for an external ID: `[\w+=,.@:/-]{2,1224}`.
fn is_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> SourceTable {
        SourceTable {
            name: Some(name.to_owned()),
            ..SourceTable::default()
        }
    }

    fn error_of(tables: Vec<SourceTable>) -> String {
        match resolve(&SourceTables::Tables(tables)) {
            Ok(ok) => panic!("accepted: {ok:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_tables_resolve_with_the_role_account() {
        let json = r#"[{"name": "prod", "region": "us-east-1", "clusters": ["web"],
            "role_arn": "arn:aws:iam::111111111111:role/ops/ecs-dns-read",
            "external_id": "s3cr3t-id"},
            {"name": "staging-2", "region": "eu-west-2"}]"#;
        let sources = resolve(&SourceTables::Json(json.into())).unwrap();
        assert_eq!(sources.len(), 2);
        let role = sources[0].role.as_ref().unwrap();
        assert_eq!(role.account, "111111111111");
        assert_eq!(role.external_id.as_ref().unwrap().expose(), "s3cr3t-id");
        assert_eq!(sources[0].clusters, ["web"]);
        assert!(sources[1].role.is_none());
        assert!(!format!("{sources:?}").contains("s3cr3t"), "{sources:?}");
    }

    /// Each bad combination: exit 2 naming `sources`, the source and the
    /// field, never the external ID.
    #[test]
    fn bad_tables_name_the_key_the_source_and_why() {
        let with = |f: &dyn Fn(&mut SourceTable)| {
            let mut t = table("prod");
            f(&mut t);
            vec![t]
        };
        let cases: Vec<(Vec<SourceTable>, &str)> = vec![
            (
                vec![table("prod"), table("prod")],
                "sources = \"prod\": two sources",
            ),
            (
                vec![SourceTable::default()],
                "sources = \"#1\": this source has no `name`",
            ),
            (
                vec![table("Prod")],
                "sources = \"Prod\": name: must be a host-name label",
            ),
            (vec![table("a.b")], "name: must be a host-name label"),
            (
                with(&|t| t.region = Some("useast1".into())),
                "sources = \"prod\": region: \"useast1\" is not an AWS region",
            ),
            (
                with(&|t| t.role_arn = Some("arn:aws:iam::12:role/x".into())),
                "sources = \"prod\": role_arn: \"arn:aws:iam::12:role/x\" is not an IAM role ARN",
            ),
            (
                with(&|t| t.role_arn = Some("arn:aws:iam::111111111111:user/x".into())),
                "role_arn",
            ),
            (
                with(&|t| t.external_id = Some(Redacted::new("hidden-id".into()))),
                "external_id: is only sent when a role is assumed",
            ),
            (
                with(&|t| {
                    t.role_arn = Some("arn:aws:iam::111111111111:role/r".into());
                    t.external_id = Some(Redacted::new("hidden id with spaces".into()));
                }),
                "external_id: must be 2 to 1224",
            ),
            (
                with(&|t| t.events_queue = Some("sqs://queue".into())),
                "events_queue: \"sqs://queue\" is not an http(s) URL",
            ),
            (
                with(&|t| t.clusters = Some(vec![" ".into()])),
                "clusters: a cluster name cannot be empty",
            ),
            (vec![], "sources = \"[]\": list at least one source"),
        ];
        for (tables, want) in cases {
            let got = error_of(tables);
            assert!(got.contains(want), "want {want:?} in {got:?}");
            assert!(!got.contains("hidden"), "an external ID shown: {got}");
        }
    }

    #[test]
    fn a_json_syntax_error_does_not_echo_the_text() {
        let text = r#"[{"name": "prod", "external_id": "hidden-id""#;
        let got = resolve(&SourceTables::Json(text.into()))
            .unwrap_err()
            .to_string();
        assert!(
            got.contains("sources = \"(JSON)\": not a JSON list"),
            "{got}"
        );
        assert!(!got.contains("hidden"), "{got}");
        let unknown = r#"[{"name": "prod", "role": "x"}]"#;
        let got = resolve(&SourceTables::Json(unknown.into()))
            .unwrap_err()
            .to_string();
        assert!(got.contains("unknown field `role`"), "{got}");
    }

    #[test]
    fn regions_and_arns() {
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "cn-north-1",
            "il-central-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in ["us-east", "US-EAST-1", "us--1", "1-us-east", "useast-1"] {
            assert!(!is_region(bad), "{bad}");
        }
        assert_eq!(
            role_account("arn:aws-us-gov:iam::123456789012:role/a/b").as_deref(),
            Some("123456789012")
        );
        assert_eq!(role_account("arn:aws:iam::123456789012:role/"), None);
        assert_eq!(role_account("arn:aws:sts::123456789012:role/x"), None);
    }
}
