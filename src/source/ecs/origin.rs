//! Which source an event is for, by the account and region it names.
//!
//! An EventBridge bus can receive the events of several accounts and
//! regions (cross-account rules, a central bus), and a cluster name is only
//! unique within one account and region: `prod` of another account must
//! not be taken for ours. An event names an account and a region in its
//! envelope (`account`, `region`) and in each of its ARNs (cluster, task,
//! container instance); it belongs to the source whose [`Scope`] covers
//! every one of them ([`route`]), and to none otherwise (it is counted as
//! `foreign` and never served).
//!
//! Today there is one source, so one route. Several sources (one per
//! account and region) become more entries of the same table.
//!
//! Pure: no I/O.

/// An account and a region an event names; `None`: that part is not given
/// (an envelope without `region`, a cluster given by name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl<'a> Place<'a> {
    /// The region and account of an ARN
    /// (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`); `None` for what is
    /// not an ARN (a bare name). Old-format ECS ARNs
    /// (`…:task/ID`, without the cluster) name them the same way.
    pub fn of_arn(arn: &'a str) -> Option<Place<'a>> {
        let mut parts = arn.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let (_partition, _service) = (parts.next()?, parts.next()?);
        let (region, account) = (parts.next()?, parts.next()?);
        parts.next()?;
        Some(Place {
            account: Some(account).filter(|a| !a.is_empty()),
            region: Some(region).filter(|r| !r.is_empty()),
        })
    }
}

/// What one source reads: its region (configured, or the SDK's), and the
/// account of its clusters once an ARN read from the API has said it.
/// An unknown part covers anything: until the account is known, only the
/// region and the served clusters' names decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub region: Option<String>,
    pub account: Option<String>,
}

impl Scope {
    /// Whether the source reads what `place` names.
    pub fn covers(&self, place: &Place<'_>) -> bool {
        let same = |mine: &Option<String>, theirs: Option<&str>| match (mine, theirs) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        };
        same(&self.region, place.region) && same(&self.account, place.account)
    }

    /// Learns the account from an ARN the API returned (a cluster's, a
    /// task's), if not known yet and the ARN is of the source's region.
    pub fn learn(&mut self, arn: &str) {
        if self.account.is_some() {
            return;
        }
        if let Some(place) = Place::of_arn(arn)
            && self.covers(&place)
        {
            self.account = place.account.map(str::to_owned);
        }
    }
}

/// The source (`K`) of the first route whose scope covers every place an
/// event names; `None`: no source reads it (foreign).
pub fn route<'r, K>(routes: &'r [(Scope, K)], places: &[Place<'_>]) -> Option<&'r K> {
    routes
        .iter()
        .find(|(scope, _)| places.iter().all(|place| scope.covers(place)))
        .map(|(_, source)| source)
}

/// Whether an event's cluster (`event_cluster`) is another cluster than
/// the served one of the same name (`served`: what the source reads it by,
/// an ARN when listed or configured so): both are ARNs and differ (another
/// account, region or partition). A name says nothing either way.
pub fn other_cluster(served: &str, event_cluster: &str) -> bool {
    let is_arn = |s: &str| Place::of_arn(s).is_some();
    is_arn(served) && is_arn(event_cluster) && served != event_cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'a>(account: &'a str, region: &'a str) -> Place<'a> {
        Place {
            account: Some(account).filter(|a| !a.is_empty()),
            region: Some(region).filter(|r| !r.is_empty()),
        }
    }

    #[test]
    fn arns_name_their_account_and_region() {
        let table = [
            (
                "arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd",
                Some(place("123456789012", "us-east-1")),
            ),
            // Old format: no cluster segment.
            (
                "arn:aws:ecs:eu-west-1:210987654321:task/0123abcd-aaaa",
                Some(place("210987654321", "eu-west-1")),
            ),
            (
                "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/prod",
                Some(place("123456789012", "cn-north-1")),
            ),
            ("prod", None),
            ("arn:aws:ecs:us-east-1", None),
        ];
        for (arn, want) in table {
            assert_eq!(Place::of_arn(arn), want, "{arn}");
        }
    }

    /// (what, the source's scope, the places an event names, routed?)
    #[test]
    fn an_event_goes_to_the_source_that_reads_all_it_names() {
        let ours = Scope {
            region: Some("us-east-1".into()),
            account: Some("123456789012".into()),
        };
        let unlearned = Scope {
            region: Some("us-east-1".into()),
            account: None,
        };
        let home = place("123456789012", "us-east-1");
        type Case<'a> = (&'a str, &'a Scope, &'a [Place<'a>], bool);
        let table: &[Case] = &[
            ("ours", &ours, &[home, home], true),
            (
                "another account",
                &ours,
                &[place("210987654321", "us-east-1")],
                false,
            ),
            (
                "another region",
                &ours,
                &[place("123456789012", "eu-west-1")],
                false,
            ),
            (
                "an envelope of ours, an ARN of another account",
                &ours,
                &[home, place("210987654321", "us-east-1")],
                false,
            ),
            (
                "an envelope without account or region",
                &ours,
                &[place("", ""), home],
                true,
            ),
            (
                "account not learned yet: the region decides",
                &unlearned,
                &[place("210987654321", "us-east-1")],
                true,
            ),
            (
                "account not learned yet, another region",
                &unlearned,
                &[place("123456789012", "eu-west-1")],
                false,
            ),
        ];
        for (what, scope, places, want) in table {
            let routes = [((*scope).clone(), 0usize)];
            assert_eq!(route(&routes, places).is_some(), *want, "{what}");
        }
    }

    #[test]
    fn a_cluster_of_the_same_name_elsewhere_is_another() {
        let prod = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
        let table = [
            (prod, prod, false),
            (
                prod,
                "arn:aws:ecs:us-east-1:210987654321:cluster/prod",
                true,
            ),
            (
                prod,
                "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
                true,
            ),
            (
                prod,
                "arn:aws-cn:ecs:us-east-1:123456789012:cluster/prod",
                true,
            ),
            (
                "prod",
                "arn:aws:ecs:us-east-1:210987654321:cluster/prod",
                false,
            ),
            (prod, "prod", false),
        ];
        for (served, event, want) in table {
            assert_eq!(other_cluster(served, event), want, "{served} / {event}");
        }
    }

    #[test]
    fn the_account_is_learned_from_an_arn_of_the_region() {
        let mut scope = Scope {
            region: Some("us-east-1".into()),
            account: None,
        };
        scope.learn("prod");
        scope.learn("arn:aws:ecs:eu-west-1:999999999999:cluster/prod");
        assert_eq!(scope.account, None, "a name, another region: nothing");
        scope.learn("arn:aws:ecs:us-east-1:123456789012:cluster/prod");
        scope.learn("arn:aws:ecs:us-east-1:210987654321:cluster/other");
        assert_eq!(scope.account.as_deref(), Some("123456789012"), "the first");
    }
}
