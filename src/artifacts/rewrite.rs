//! URI rewriting, as pure functions over JSON bodies.
//!
//! Responses: every `s3://` URI under the store root, in the fields MLflow uses for artifact locations,
//! becomes `mlflow-artifacts:/<rest>`, which the stock client resolves to the proxy's artifact API.
//! Requests: where a client sends a location back (registering a model from a run, creating an experiment
//! or a workspace), `mlflow-artifacts:` URIs become `s3://` again, so MLflow's records keep `s3://` URIs.

use http::Method;
use serde_json::Value;

use super::keys::{StoreRoot, Unsafe};

/// Response fields that hold an artifact location (MLflow's protos, and GraphQL's camelCase names):
/// run `info.artifact_uri`, experiment `artifact_location`, logged model `artifact_uri`, listing
/// `root_uri`, model version `source` and `storage_location`, get-download-uri's `artifact_uri`,
/// workspace `default_artifact_root`.
const RESPONSE_FIELDS: [&str; 8] = [
    "artifact_uri",
    "artifact_location",
    "root_uri",
    "source",
    "storage_location",
    "default_artifact_root",
    "artifactUri",
    "artifactLocation",
];

/// The trace tag that holds a trace's artifact location.
const TRACE_LOCATION_TAG: &str = "mlflow.artifactLocation";

/// Request fields a client sends a location in.
const REQUEST_FIELDS: [&str; 3] = ["source", "artifact_location", "default_artifact_root"];

/// Whether a response on this path may carry artifact locations (MLflow's JSON APIs and GraphQL; not the
/// artifact API itself, and not the UI's pages).
pub fn response_applies(path: &str) -> bool {
    let api = path.starts_with("/api/") || path.starts_with("/ajax-api/");
    (api && path.contains("/mlflow/")) || path.trim_end_matches('/').ends_with("/graphql")
}

/// Whether a request on this path sends a location that must be mapped back into the store.
pub fn request_applies(method: &Method, path: &str) -> bool {
    if !matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        return false;
    }
    let path = path.trim_end_matches('/');
    path.ends_with("/mlflow/model-versions/create")
        || path.ends_with("/mlflow/experiments/create")
        || path.ends_with("/mlflow/workspaces")
        || path
            .rsplit_once('/')
            .is_some_and(|(head, _)| head.ends_with("/mlflow/workspaces"))
}

/// Rewrites a response body; `None` when it is not JSON or has nothing to rewrite.
pub fn rewrite_response_body(root: &StoreRoot, body: &[u8]) -> Option<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    if rewrite_response_value(root, &mut json) {
        serde_json::to_vec(&json).ok()
    } else {
        None
    }
}

/// Rewrites artifact locations in a parsed response; true when anything changed.
pub fn rewrite_response_value(root: &StoreRoot, value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            // A tag as {"key": "mlflow.artifactLocation", "value": "s3://..."}.
            let is_location_tag =
                map.get("key").and_then(Value::as_str) == Some(TRACE_LOCATION_TAG);
            for (name, field) in map.iter_mut() {
                let location_field = RESPONSE_FIELDS.contains(&name.as_str())
                    || name == TRACE_LOCATION_TAG
                    || (is_location_tag && name == "value");
                match field {
                    Value::String(s) if location_field => {
                        if let Some(mapped) = root.client_uri_for(s) {
                            *s = mapped;
                            changed = true;
                        }
                    }
                    other => changed |= rewrite_response_value(root, other),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= rewrite_response_value(root, item);
            }
        }
        _ => {}
    }
    changed
}

/// Rewrites a request body's location fields back to `s3://`; `Ok(None)` when nothing changed.
/// A location that would leave the store (`mlflow-artifacts:/../x`) is refused.
pub fn rewrite_request_body(root: &StoreRoot, body: &[u8]) -> Result<Option<Vec<u8>>, Unsafe> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    let mut changed = false;
    for field in REQUEST_FIELDS {
        if let Some(Value::String(s)) = map.get_mut(field) {
            if let Some(mapped) = root.s3_uri_for(s) {
                *s = mapped?;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(serde_json::to_vec(&Value::Object(map)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> StoreRoot {
        StoreRoot::parse("s3://bkt/mlflow").unwrap()
    }

    fn rewritten(value: Value) -> Value {
        let bytes = serde_json::to_vec(&value).unwrap();
        match rewrite_response_body(&root(), &bytes) {
            Some(out) => serde_json::from_slice(&out).unwrap(),
            None => value,
        }
    }

    #[test]
    fn runs_experiments_and_listings() {
        let run = rewritten(
            json!({"run": {"info": {"run_id": "r", "artifact_uri": "s3://bkt/mlflow/1/r/artifacts"},
            "data": {"tags": [{"key": "note", "value": "s3://bkt/mlflow/1/x"}]}}}),
        );
        assert_eq!(
            run["run"]["info"]["artifact_uri"],
            "mlflow-artifacts:/1/r/artifacts"
        );
        assert_eq!(
            run["run"]["data"]["tags"][0]["value"], "s3://bkt/mlflow/1/x",
            "ordinary tags are left alone"
        );
        let search = rewritten(
            json!({"runs": [{"info": {"artifact_uri": "s3://bkt/mlflow/1/a/artifacts"}},
            {"info": {"artifact_uri": "s3://bkt/mlflow/1/b/artifacts"}}]}),
        );
        assert_eq!(
            search["runs"][1]["info"]["artifact_uri"],
            "mlflow-artifacts:/1/b/artifacts"
        );
        let exp = rewritten(json!({"experiments": [{"artifact_location": "s3://bkt/mlflow/7"}]}));
        assert_eq!(
            exp["experiments"][0]["artifact_location"],
            "mlflow-artifacts:/7"
        );
        let list = rewritten(
            json!({"root_uri": "s3://bkt/mlflow/1/r/artifacts", "files": [{"path": "a"}]}),
        );
        assert_eq!(list["root_uri"], "mlflow-artifacts:/1/r/artifacts");
    }

    #[test]
    fn models_traces_graphql_and_workspaces() {
        let mv = rewritten(json!({"registered_model": {"latest_versions": [
            {"source": "s3://bkt/mlflow/1/models/m-1/artifacts", "storage_location": "s3://bkt/mlflow/1/models/m-1/artifacts"},
            {"source": "models:/m-2"}]}}));
        assert_eq!(
            mv["registered_model"]["latest_versions"][0]["source"],
            "mlflow-artifacts:/1/models/m-1/artifacts"
        );
        assert_eq!(
            mv["registered_model"]["latest_versions"][1]["source"],
            "models:/m-2"
        );
        let dl = rewritten(json!({"artifact_uri": "s3://bkt/mlflow/1/models/m-1/artifacts"}));
        assert_eq!(
            dl["artifact_uri"],
            "mlflow-artifacts:/1/models/m-1/artifacts"
        );
        let trace_v3 = rewritten(json!({"trace": {"trace_info": {"tags": {
            "mlflow.artifactLocation": "s3://bkt/mlflow/1/traces/tr-1/artifacts", "other": "s3://bkt/mlflow/z"}}}}));
        assert_eq!(
            trace_v3["trace"]["trace_info"]["tags"]["mlflow.artifactLocation"],
            "mlflow-artifacts:/1/traces/tr-1/artifacts"
        );
        assert_eq!(
            trace_v3["trace"]["trace_info"]["tags"]["other"],
            "s3://bkt/mlflow/z"
        );
        let trace_v2 = rewritten(json!({"trace_info": {"tags": [
            {"key": "mlflow.artifactLocation", "value": "s3://bkt/mlflow/1/traces/tr-2/artifacts"}]}}));
        assert_eq!(
            trace_v2["trace_info"]["tags"][0]["value"],
            "mlflow-artifacts:/1/traces/tr-2/artifacts"
        );
        let gql = rewritten(
            json!({"data": {"mlflowGetRun": {"run": {"info": {"artifactUri": "s3://bkt/mlflow/1/r/artifacts"}}}}}),
        );
        assert_eq!(
            gql["data"]["mlflowGetRun"]["run"]["info"]["artifactUri"],
            "mlflow-artifacts:/1/r/artifacts"
        );
        let ws = rewritten(
            json!({"workspace": {"name": "w", "default_artifact_root": "s3://bkt/mlflow/workspaces/w"}}),
        );
        assert_eq!(
            ws["workspace"]["default_artifact_root"],
            "mlflow-artifacts:/workspaces/w"
        );
    }

    #[test]
    fn other_stores_and_non_json_are_untouched() {
        let root = root();
        let other = json!({"artifact_uri": "s3://other-bucket/mlflow/1/r/artifacts", "source": "s3://bkt/mlflowx/1"});
        assert!(rewrite_response_body(&root, &serde_json::to_vec(&other).unwrap()).is_none());
        assert!(rewrite_response_body(&root, b"<html>").is_none());
        assert!(rewrite_response_body(&root, b"").is_none());
    }

    #[test]
    fn requests_map_back_to_s3() {
        let root = root();
        let body =
            json!({"name": "m", "source": "mlflow-artifacts:/1/r/artifacts/model", "run_id": "r"});
        let out = rewrite_request_body(&root, &serde_json::to_vec(&body).unwrap())
            .unwrap()
            .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["source"], "s3://bkt/mlflow/1/r/artifacts/model");
        assert_eq!(out["run_id"], "r");
        let exp = json!({"name": "e", "artifact_location": "mlflow-artifacts:/custom"});
        let out = rewrite_request_body(&root, &serde_json::to_vec(&exp).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap()["artifact_location"],
            "s3://bkt/mlflow/custom"
        );
        let untouched = json!({"name": "m", "source": "runs:/r/model"});
        assert!(
            rewrite_request_body(&root, &serde_json::to_vec(&untouched).unwrap())
                .unwrap()
                .is_none()
        );
        let escape = json!({"source": "mlflow-artifacts:/../../other/x"});
        assert!(rewrite_request_body(&root, &serde_json::to_vec(&escape).unwrap()).is_err());
        assert!(rewrite_request_body(&root, b"not json").unwrap().is_none());
    }

    #[test]
    fn which_paths() {
        assert!(response_applies("/api/2.0/mlflow/runs/get"));
        assert!(response_applies("/ajax-api/2.0/mlflow/runs/search"));
        assert!(response_applies("/api/3.0/mlflow/traces/tr-1"));
        assert!(response_applies("/graphql"));
        assert!(!response_applies("/api/2.0/mlflow-artifacts/artifacts/x"));
        assert!(!response_applies("/static-files/index.html"));
        assert!(request_applies(
            &Method::POST,
            "/api/2.0/mlflow/model-versions/create"
        ));
        assert!(request_applies(
            &Method::POST,
            "/api/2.0/mlflow/experiments/create"
        ));
        assert!(request_applies(&Method::POST, "/api/3.0/mlflow/workspaces"));
        assert!(request_applies(
            &Method::PATCH,
            "/api/3.0/mlflow/workspaces/team-a"
        ));
        assert!(!request_applies(
            &Method::GET,
            "/api/2.0/mlflow/experiments/create"
        ));
        assert!(!request_applies(
            &Method::POST,
            "/api/2.0/mlflow/runs/create"
        ));
    }
}
