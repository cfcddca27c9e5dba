//! ARN parsing never panics, and whatever parses round-trips and yields a usable base URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sagemaker_mlflow_proxy::fuzzing::{MlflowArn, SigningTarget, Upstream};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(arn) = text.parse::<MlflowArn>() {
        assert_eq!(arn.raw.parse::<MlflowArn>().as_ref(), Ok(&arn));
        let signing = SigningTarget::for_arn(&arn);
        assert_eq!(signing.routing_value.as_bytes(), arn.raw.as_bytes());
        Upstream::new(&arn.default_base_url(), Some(signing)).expect("the derived base URL is valid");
    }
});
