//! Percent-decoding, the one way the proxy reads encoded paths, queries and form values.

use std::borrow::Cow;

/// The `key=value` pairs of a query string (`application/x-www-form-urlencoded`) as written; decode a
/// value with [`decode_form_value`]. Pairs without `=` are passed over.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| pair.split_once('='))
}

/// One form value decoded: `+` is a space, `%XX` escapes must be whole, invalid UTF-8 is replaced.
pub fn decode_form_value(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    let decoded = percent_decode_strict(&spaced)?;
    Some(String::from_utf8_lossy(&decoded).into_owned())
}

/// Percent-decodes, returning `None` for a `%` not followed by two hex digits. Borrows when there is
/// nothing to decode (most path segments and query values).
pub fn percent_decode_strict(input: &str) -> Option<Cow<'_, [u8]>> {
    let bytes = input.as_bytes();
    if !bytes.contains(&b'%') {
        return Some(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(out))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_as_forms_do() {
        let pairs: Vec<(&str, &str)> =
            query_pairs("experiment_name=team+a%2Fx&bad=%zz&flag&run_id=1").collect();
        assert_eq!(
            pairs,
            [
                ("experiment_name", "team+a%2Fx"),
                ("bad", "%zz"),
                ("run_id", "1")
            ]
        );
        assert_eq!(decode_form_value("team+a%2Fx").unwrap(), "team a/x");
        assert!(decode_form_value("%zz").is_none());
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(*percent_decode_strict("a%20b").unwrap(), *b"a b");
        assert_eq!(*percent_decode_strict("%41%7e").unwrap(), *b"A~");
        assert_eq!(*percent_decode_strict("plain").unwrap(), *b"plain");
        assert!(percent_decode_strict("%g0").is_none());
        assert!(percent_decode_strict("%").is_none());
    }
}
