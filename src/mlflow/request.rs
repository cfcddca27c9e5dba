//! How MLflow reads a request's parameters, for the proxy's decisions that depend on them (the
//! policy's experiment-prefix rules, the audit line's subjects): the same sources, in the same order
//! and with the same precedence as MLflow's handlers (`mlflow/server/handlers.py`,
//! `_get_request_message`), so that what the proxy checks is what MLflow acts on. Where the proxy
//! cannot be sure, it reads nothing, and a rule that needs the value does not grant.

use http::Method;
use serde_json::{Map, Value};

use crate::mlflow::routes::rest_operation;
use crate::net::form::decode_form_value;

/// The JSON object MLflow reads from a request body: the body parsed as JSON, and parsed once more
/// when that gives a string (older clients double-encode their bodies; MLflow's
/// `_get_normalized_request_json` decodes them again). With duplicate keys the last one wins, as in
/// Python's `json`.
pub fn body_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(map) => Some(map),
        Value::String(inner) => match serde_json::from_str::<Value>(&inner).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        },
        _ => None,
    }
}

/// An operation whose request names, by name, the experiment it acts on: the protobuf field that
/// holds the name, and its JSON name (protobuf's JSON parser takes either in a body).
struct NamingOperation {
    method: Method,
    operation: &'static str,
    field: &'static str,
    json_name: &'static str,
}

/// The only operations whose request names the experiment they act on by its name. Every other
/// operation names its experiment by id, or a run, model or trace, so a name found in its request
/// (a decoy `?experiment_name=`, a `new_name`) is not the experiment MLflow acts on, and an
/// experiment-prefix rule cannot be matched to it without looking the experiment up.
fn naming_operations() -> [NamingOperation; 2] {
    [
        NamingOperation {
            method: Method::POST,
            operation: "experiments/create",
            field: "name",
            json_name: "name",
        },
        NamingOperation {
            method: Method::GET,
            operation: "experiments/get-by-name",
            field: "experiment_name",
            json_name: "experimentName",
        },
    ]
}

/// The name of the experiment this request acts on, when the request itself says it (see
/// [`naming_operations`]); `None` when the operation names its experiment otherwise, or when the
/// name is missing or ambiguous.
pub fn experiment_acted_on(
    method: &Method,
    path: &str,
    query: &str,
    body: Option<&[u8]>,
) -> Option<String> {
    let operation = rest_operation(path)?;
    let naming = naming_operations()
        .into_iter()
        .find(|n| n.method == method && n.operation == operation)?;
    // A GET with any query parameter is read from the query alone; otherwise from the body.
    if *method == Method::GET && has_query_parameters(query) {
        return first_query_value(query, naming.field);
    }
    let object = body_object(body?)?;
    let by_field = object.get(naming.field);
    let value = match (by_field, object.get(naming.json_name)) {
        _ if naming.field == naming.json_name => by_field?,
        (Some(value), None) | (None, Some(value)) => value,
        // Both spellings of one field: protobuf refuses the request.
        _ => return None,
    };
    value.as_str().map(str::to_string)
}

/// Whether the query has any parameter, as Python's `parse_qsl(keep_blank_values=True)` counts them:
/// every non-empty `&`-separated piece, with or without `=`.
fn has_query_parameters(query: &str) -> bool {
    query.split('&').any(|piece| !piece.is_empty())
}

/// The first value of `key` in the query, comparing decoded keys (an encoded `experiment%5Fname` is
/// the same parameter to MLflow); `None` when it is absent or a key or value cannot be decoded.
fn first_query_value(query: &str, key: &str) -> Option<String> {
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        if decode_form_value(raw_key)? == key {
            return decode_form_value(raw_value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "/api/2.0/mlflow/experiments/create";
    const BY_NAME: &str = "/ajax-api/2.0/mlflow/experiments/get-by-name";

    fn acted_on(method: Method, path: &str, query: &str, body: &str) -> Option<String> {
        experiment_acted_on(&method, path, query, Some(body.as_bytes()))
    }

    #[test]
    fn create_and_get_by_name_name_their_experiment() {
        let named = acted_on(Method::POST, CREATE, "", r#"{"name":"team-a/x"}"#);
        assert_eq!(named.as_deref(), Some("team-a/x"));
        let by_name = acted_on(Method::GET, BY_NAME, "experiment_name=team-a%2Fx", "");
        assert_eq!(by_name.as_deref(), Some("team-a/x"));
        let in_body = acted_on(Method::GET, BY_NAME, "", r#"{"experimentName":"team-a/y"}"#);
        assert_eq!(in_body.as_deref(), Some("team-a/y"));
    }

    #[test]
    fn other_operations_and_decoys_name_nothing() {
        // The red-team's findings: a name read from a route that acts on something else.
        let cases = [
            (
                Method::POST,
                "/api/2.0/mlflow/runs/delete",
                "experiment_name=team-a/x",
                r#"{"run_id":"r1"}"#,
            ),
            (
                Method::POST,
                "/api/2.0/mlflow/experiments/update",
                "",
                r#"{"experiment_id":"7","new_name":"team-a/x"}"#,
            ),
            (
                Method::POST,
                "/api/2.0/mlflow/experiments/delete",
                "",
                r#"{"experiment_id":"7","name":"team-a/x"}"#,
            ),
            (Method::HEAD, BY_NAME, "experiment_name=team-a/x", ""),
        ];
        for (method, path, query, body) in cases {
            let acted = acted_on(method.clone(), path, query, body);
            assert_eq!(acted, None, "{method} {path}");
        }
        // A create acts on the name in its body, whatever its query says.
        let decoy = acted_on(
            Method::POST,
            CREATE,
            "experiment_name=team-a/x",
            r#"{"name":"team-b/x"}"#,
        );
        assert_eq!(decoy.as_deref(), Some("team-b/x"));
    }

    #[test]
    fn read_as_mlflow_reads_it() {
        // The last duplicate key wins, as in Python's json.
        let dup = acted_on(
            Method::POST,
            CREATE,
            "",
            r#"{"name":"team-a/x","name":"team-b/x"}"#,
        );
        assert_eq!(dup.as_deref(), Some("team-b/x"));
        // A double-encoded body is decoded again.
        let double = acted_on(Method::POST, CREATE, "", r#""{\"name\":\"team-b/x\"}""#);
        assert_eq!(double.as_deref(), Some("team-b/x"));
        // Any query parameter makes MLflow read a GET from the query alone.
        assert_eq!(
            acted_on(
                Method::GET,
                BY_NAME,
                "x=1",
                r#"{"experiment_name":"team-a/x"}"#
            ),
            None
        );
        // An encoded key is the same parameter; the first value wins.
        let encoded = acted_on(
            Method::GET,
            BY_NAME,
            "experiment%5Fname=team-b/x&experiment_name=team-a/x",
            "",
        );
        assert_eq!(encoded.as_deref(), Some("team-b/x"));
        // What cannot be read for certain names nothing.
        assert_eq!(
            acted_on(Method::GET, BY_NAME, "experiment_name=%zz", ""),
            None
        );
        assert_eq!(acted_on(Method::POST, CREATE, "", r#"{"name":7}"#), None);
        assert_eq!(
            acted_on(
                Method::GET,
                BY_NAME,
                "",
                r#"{"experiment_name":"a","experimentName":"b"}"#
            ),
            None
        );
        assert_eq!(acted_on(Method::POST, CREATE, "", "not json"), None);
    }
}
