//! The policy file's format (TOML), read and checked once at start; `gate::policy` decides with it.
//!
//! ```toml
//! default = ["read"]            # classes every authenticated identity gets
//!
//! [[rule]]
//! groups = ["ml-engineers"]
//! allow = ["read", "write"]
//! experiment_prefix = "team-a/"  # optional: grants only on experiments named so
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::mlflow::routes::Class;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: Vec<Class>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    identities: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    allow: Vec<Class>,
    #[serde(default)]
    experiment_prefix: Option<String>,
}

/// One rule: whom it names and what it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub identities: Vec<String>,
    pub groups: Vec<String>,
    pub allow: BTreeSet<Class>,
    /// When set, the rule only grants on requests that name an experiment starting with this.
    pub experiment_prefix: Option<String>,
}

/// A policy file's content, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRules {
    pub default: BTreeSet<Class>,
    pub rules: Vec<Rule>,
}

impl PolicyRules {
    /// Parses and checks a policy file's text; errors say which rule is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let rules = file
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                if r.identities.is_empty() && r.groups.is_empty() {
                    return Err(format!("rule {} names no identities and no groups", i + 1));
                }
                // The token file, the groups header and string claims list groups separated by
                // commas: a name with a comma could only ever match by accident.
                if let Some(group) = r.groups.iter().find(|g| g.contains(',')) {
                    return Err(format!(
                        "rule {}: group {group:?} contains a comma (groups are listed comma-separated, so no group name has one)",
                        i + 1
                    ));
                }
                Ok(Rule {
                    identities: r.identities,
                    groups: r.groups,
                    allow: r.allow.into_iter().collect(),
                    experiment_prefix: r.experiment_prefix,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PolicyRules {
            default: file.default.into_iter().collect(),
            rules,
        })
    }
}
