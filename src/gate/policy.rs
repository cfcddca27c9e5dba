//! What a caller may do, by MLflow operation class, from the rules of the policy file
//! (`settings::policy_file` reads it):
//!
//! ```toml
//! # classes every authenticated identity gets
//! default = ["read"]
//!
//! [[rule]]
//! groups = ["ml-engineers"]
//! allow = ["read", "write"]
//!
//! [[rule]]
//! identities = ["ci-nightly", "alice@example.com"]
//! allow = ["read", "write", "delete"]
//! ```
//!
//! Without `--policy` and `--read-only` every class is allowed (and unknown routes pass, so new MLflow
//! endpoints keep working); with either, unknown routes are denied.

use std::collections::BTreeSet;

use crate::gate::auth::Identity;
pub use crate::mlflow::routes::{classify, Class};
use crate::settings::policy_file::{PolicyRules, Rule};

#[derive(Debug, Clone)]
pub struct Policy {
    /// False only when no policy is configured at all.
    enforced: bool,
    default: BTreeSet<Class>,
    rules: Vec<Rule>,
}

/// Why a request was denied, in words for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    UnknownRoute,
    Missing(Class),
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::UnknownRoute => f.write_str(
                "this MLflow route is not in the proxy's permission table, so it is denied",
            ),
            Denial::Missing(class) => write!(f, "missing permission: {}", class.name()),
        }
    }
}

impl Policy {
    /// Everything allowed (no policy configured).
    pub fn allow_all() -> Self {
        Policy {
            enforced: false,
            default: BTreeSet::new(),
            rules: Vec::new(),
        }
    }

    /// Only reads, for everyone.
    pub fn read_only() -> Self {
        Policy {
            enforced: true,
            default: [Class::Read].into(),
            rules: Vec::new(),
        }
    }

    /// The policy a policy file's rules describe.
    pub fn from_rules(rules: PolicyRules) -> Self {
        Policy {
            enforced: true,
            default: rules.default,
            rules: rules.rules,
        }
    }

    /// The policy of a policy file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        PolicyRules::parse(text).map(Self::from_rules)
    }

    /// Applies `--read-only` on top: whatever the file grants, only reads remain.
    pub fn restricted_to_reads(mut self) -> Self {
        self.enforced = true;
        self.default.retain(|c| *c == Class::Read);
        if self.rules.is_empty() && self.default.is_empty() {
            self.default.insert(Class::Read);
        }
        for rule in &mut self.rules {
            rule.allow.retain(|c| *c == Class::Read);
        }
        self
    }

    pub fn is_enforced(&self) -> bool {
        self.enforced
    }

    /// The classes `identity` holds on a request naming `experiment` (if it names one).
    pub fn classes_for(&self, identity: &Identity, experiment: Option<&str>) -> BTreeSet<Class> {
        let mut classes = self.default.clone();
        for rule in &self.rules {
            let named = rule.identities.contains(&identity.name);
            let in_group = rule.groups.iter().any(|g| identity.groups.contains(g));
            let prefix_ok = match &rule.experiment_prefix {
                None => true,
                Some(prefix) => experiment.is_some_and(|name| name.starts_with(prefix.as_str())),
            };
            if (named || in_group) && prefix_ok {
                classes.extend(rule.allow.iter().copied());
            }
        }
        classes
    }

    /// Decides one request; `class` is `None` for a route the table does not know; `experiment` is the
    /// experiment name the request names, if any.
    pub fn check(
        &self,
        identity: &Identity,
        class: Option<Class>,
        experiment: Option<&str>,
    ) -> Result<(), Denial> {
        if !self.enforced {
            return Ok(());
        }
        let class = class.ok_or(Denial::UnknownRoute)?;
        if self.classes_for(identity, experiment).contains(&class) {
            Ok(())
        } else {
            Err(Denial::Missing(class))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str, groups: &[&str]) -> Identity {
        Identity {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method: "token",
        }
    }

    const FILE: &str = r#"
default = ["read"]
[[rule]]
groups = ["ml-engineers"]
allow = ["read", "write"]
[[rule]]
identities = ["ci-nightly"]
allow = ["write", "delete"]
"#;

    #[test]
    fn rules_grant_by_identity_and_group() {
        let policy = Policy::parse(FILE).unwrap();
        let reader = who("bob", &[]);
        let engineer = who("alice", &["ml-engineers"]);
        let ci = who("ci-nightly", &[]);
        assert!(policy.check(&reader, Some(Class::Read), None).is_ok());
        assert_eq!(
            policy.check(&reader, Some(Class::Write), None),
            Err(Denial::Missing(Class::Write))
        );
        assert!(policy.check(&engineer, Some(Class::Write), None).is_ok());
        assert_eq!(
            policy.check(&engineer, Some(Class::Delete), None),
            Err(Denial::Missing(Class::Delete))
        );
        assert!(policy.check(&ci, Some(Class::Delete), None).is_ok());
        assert_eq!(
            policy.check(&ci, Some(Class::Admin), None),
            Err(Denial::Missing(Class::Admin))
        );
        assert_eq!(policy.check(&ci, None, None), Err(Denial::UnknownRoute));
    }

    #[test]
    fn no_policy_allows_everything_and_read_only_only_reads() {
        let anyone = Identity::anonymous();
        assert!(Policy::allow_all().check(&anyone, None, None).is_ok());
        assert!(Policy::allow_all()
            .check(&anyone, Some(Class::Admin), None)
            .is_ok());
        let ro = Policy::read_only();
        assert!(ro.check(&anyone, Some(Class::Read), None).is_ok());
        assert_eq!(
            ro.check(&anyone, Some(Class::Write), None),
            Err(Denial::Missing(Class::Write))
        );
        let restricted = Policy::parse(FILE).unwrap().restricted_to_reads();
        assert_eq!(
            restricted.check(&who("ci-nightly", &[]), Some(Class::Delete), None),
            Err(Denial::Missing(Class::Delete))
        );
    }

    #[test]
    fn experiment_prefix_rules_grant_only_on_named_experiments() {
        let policy = Policy::parse(
            r#"
default = ["read"]
[[rule]]
groups = ["team-a"]
allow = ["write", "delete"]
experiment_prefix = "team-a/"
"#,
        )
        .unwrap();
        let member = who("ann", &["team-a"]);
        assert!(policy
            .check(&member, Some(Class::Write), Some("team-a/churn"))
            .is_ok());
        assert_eq!(
            policy.check(&member, Some(Class::Write), Some("team-b/churn")),
            Err(Denial::Missing(Class::Write))
        );
        assert_eq!(
            policy.check(&member, Some(Class::Write), None),
            Err(Denial::Missing(Class::Write))
        );
        assert!(policy.check(&member, Some(Class::Read), None).is_ok());
    }

    #[test]
    fn bad_files_are_rejected() {
        assert!(Policy::parse("default = [\"fly\"]").is_err());
        assert!(Policy::parse("[[rule]]\nallow = [\"read\"]")
            .unwrap_err()
            .contains("names no identities"));
        assert!(Policy::parse("defaults = []").is_err());
    }
}
