//! The classes of MLflow operations that permissions are given in: `read` changes nothing; `write`
//! creates or changes what users own; `delete` removes entities; `admin` is the server's
//! configuration (see `mlflow::routes` for which operation is which).

/// An operation's class; ordered from least to most consequential (`Read < Write < Delete < Admin`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Read,
    Write,
    Delete,
    Admin,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Delete => "delete",
            Class::Admin => "admin",
        }
    }
}
