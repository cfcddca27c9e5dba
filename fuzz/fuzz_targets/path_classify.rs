//! Path validation, route classification and query canonicalisation never panic; an accepted path has
//! no dot segments or encoded slashes, and canonical queries are stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sagemaker_mlflow_proxy::fuzzing::{
    canonicalize_query, classify, is_mlflow_api_path, percent_decode_strict, validate_path,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path_part, query_part) = text.split_once('?').unwrap_or((text, ""));
    if validate_path(path_part).is_ok() {
        for segment in path_part.split('/') {
            let decoded = percent_decode_strict(segment).expect("validated");
            assert!(*decoded != *b"." && *decoded != *b"..");
        }
        for method in [http::Method::GET, http::Method::POST, http::Method::DELETE, http::Method::PUT] {
            let _ = classify(&method, path_part, Some(query_part.as_bytes()));
        }
        let _ = is_mlflow_api_path(path_part);
    }
    if let Ok(canonical) = canonicalize_query(query_part) {
        assert_eq!(canonicalize_query(&canonical).ok().as_deref(), Some(canonical.as_str()));
    }
});
