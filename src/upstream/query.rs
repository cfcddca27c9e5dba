//! Query strings in the one form that is both signed and sent.
//!
//! MLflow clients encode spaces as `+`, but SageMaker canonicalizes `+` as a literal plus, so a request
//! forwarded with `+` fails its signature check (PROTOCOL.md section 2). Each parameter is decoded the
//! way MLflow's server decodes it (`+` is a space) and re-encoded with SigV4's strict encoding (only
//! `A-Z a-z 0-9 - _ . ~` left as is), so the string sent is exactly the string the signer canonicalizes.

use crate::aws::sigv4::{push_recoded, Escapes};
use crate::error::Error;

/// Rewrites a raw query string into its canonical form; order and repeated keys are kept.
pub fn canonicalize_query(raw: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(raw.len() + 16);
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !out.is_empty() {
            out.push('&');
        }
        recode_component(key, &mut out)?;
        out.push('=');
        recode_component(value, &mut out)?;
    }
    Ok(out)
}

/// Decodes one component (`+` is a space, `%XX` a byte) and appends it strictly encoded, in one pass.
fn recode_component(component: &str, out: &mut String) -> Result<(), Error> {
    push_recoded(component, Escapes::Strict, out).map_err(|_| {
        Error::BadRequest(format!(
            "invalid percent-encoding in query parameter {component:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_becomes_percent_20() {
        assert_eq!(
            canonicalize_query("experiment_name=my+experiment").unwrap(),
            "experiment_name=my%20experiment"
        );
    }

    #[test]
    fn literal_plus_stays_a_plus() {
        assert_eq!(canonicalize_query("filter=a%2Bb").unwrap(), "filter=a%2Bb");
    }

    #[test]
    fn filter_strings_with_quotes_and_operators() {
        assert_eq!(
            canonicalize_query("filter=params.alpha+%3D+%270.5%27&max_results=10").unwrap(),
            "filter=params.alpha%20%3D%20%270.5%27&max_results=10"
        );
        // Raw characters that some clients leave unencoded get encoded.
        assert_eq!(
            canonicalize_query("filter=name='a b'").unwrap(),
            "filter=name%3D%27a%20b%27"
        );
    }

    #[test]
    fn keeps_order_repeats_and_blank_values() {
        assert_eq!(
            canonicalize_query("b=2&a=1&a=0&flag&&c=").unwrap(),
            "b=2&a=1&a=0&flag=&c="
        );
    }

    #[test]
    fn lowercase_escapes_become_uppercase_and_unreserved_are_decoded() {
        assert_eq!(
            canonicalize_query("k=%7e%2f%c3%a9").unwrap(),
            "k=~%2F%C3%A9"
        );
    }

    #[test]
    fn idempotent() {
        let once = canonicalize_query("q=a+b%21&x=%E2%9C%93").unwrap();
        assert_eq!(canonicalize_query(&once).unwrap(), once);
    }

    #[test]
    fn broken_escapes_are_refused() {
        assert!(matches!(
            canonicalize_query("run_id=%zz"),
            Err(Error::BadRequest(_))
        ));
        assert!(canonicalize_query("a=%4").is_err());
    }
}
