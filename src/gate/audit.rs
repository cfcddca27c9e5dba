//! Audit events: one structured line (tracing target `audit`) per mutating MLflow call, saying who,
//! from where, which operation on which experiment/run/model, the outcome, and the request id.

use std::net::IpAddr;

use serde_json::Value;

use crate::gate::auth::Identity;
use crate::gate::policy::Class;
use crate::mlflow::request::body_object;
use crate::net::form::{decode_form_value, query_pairs};

/// Fields that name what a request acts on, looked up in the query and in a JSON body.
const SUBJECT_FIELDS: [&str; 8] = [
    "experiment_id",
    "run_id",
    "name",
    "new_name",
    "version",
    "model_id",
    "trace_id",
    "key",
];

/// What a request acts on, as `field=value` pairs (values shortened to 200 characters).
pub fn subjects(query: &str, json_body: Option<&[u8]>) -> String {
    let mut found: Vec<String> = Vec::new();
    for (key, raw) in query_pairs(query) {
        if SUBJECT_FIELDS.contains(&key) {
            let value = decode_form_value(raw).unwrap_or_else(|| raw.to_string());
            found.push(format!("{key}={}", shorten(&value)));
        }
    }
    // Read as MLflow reads it (a double-encoded body included).
    if let Some(map) = json_body.and_then(body_object) {
        for field in SUBJECT_FIELDS {
            if let Some(value) = map.get(field) {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                found.push(format!("{field}={}", shorten(&text)));
            }
        }
    }
    found.join(" ")
}

fn shorten(value: &str) -> String {
    value.chars().take(200).collect()
}

pub struct AuditEvent<'a> {
    pub identity: &'a Identity,
    /// The client's address (behind `--trusted-proxies`, the one they forwarded).
    pub remote: Option<IpAddr>,
    pub method: &'a http::Method,
    pub path: &'a str,
    pub class: Option<Class>,
    pub subjects: &'a str,
    pub status: u16,
    pub request_id: &'a str,
}

/// Whether a call is audited: everything except reads.
pub fn is_audited(class: Option<Class>) -> bool {
    class != Some(Class::Read)
}

/// Whether audit lines are written (the log filter may drop the `audit` target's info lines); when they
/// are not, nothing need be gathered for them.
pub fn enabled() -> bool {
    tracing::enabled!(target: "audit", tracing::Level::INFO)
}

pub fn emit(event: &AuditEvent<'_>) {
    tracing::info!(
        target: "audit",
        who = %event.identity.name,
        auth = event.identity.method,
        remote = event.remote.map(|ip| ip.to_string()),
        method = %event.method,
        path = %event.path,
        class = event.class.map(Class::name).unwrap_or("unknown"),
        subjects = %event.subjects,
        status = event.status,
        outcome = if event.status < 400 { "allowed" } else { "failed" },
        request_id = %event.request_id,
        "mlflow change"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_from_query_and_body() {
        assert_eq!(
            subjects(
                "run_id=abc&max_results=5",
                Some(br#"{"experiment_id":"7","name":"my model","value":1}"#)
            ),
            "run_id=abc experiment_id=7 name=my model"
        );
        assert_eq!(subjects("name=a+b%21", None), "name=a b!");
        assert_eq!(subjects("", Some(b"not json")), "");
        assert!(is_audited(Some(Class::Write)));
        assert!(is_audited(None));
        assert!(!is_audited(Some(Class::Read)));
    }

    #[test]
    fn subjects_of_a_double_encoded_body_as_mlflow_reads_it() {
        assert_eq!(
            subjects("", Some(br#""{\"run_id\": \"victim\"}""#)),
            "run_id=victim"
        );
    }
}
