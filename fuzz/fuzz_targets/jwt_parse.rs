//! ALB token parsing never panics and never accepts a token that is not ES256 with the expected signer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sagemaker_mlflow_proxy::fuzzing::parse_and_check;

const SIGNER: &str = "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/mlflow/abc";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = parse_and_check(token, SIGNER, std::time::SystemTime::now()) {
        assert_eq!(parsed.header["alg"], "ES256");
        assert!(!parsed.kid.is_empty() && parsed.kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
});
