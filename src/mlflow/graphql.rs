//! The class of a GraphQL request to MLflow's `/graphql`, from a real reading of its document.
//!
//! MLflow reads the document from the JSON body's `query` field, for GET and POST alike, with Flask's
//! `get_json(force=True)`: the body is JSON in UTF-8, UTF-16 or UTF-32 (Python's `json.loads` detects
//! which), whatever the content type. The proxy reads it the same way, then scans the document's
//! top-level definitions: a `mutation` or `subscription` makes the request a write, `query`
//! operations (and the `{ … }` shorthand) a read. A body or document the proxy cannot read has no
//! class, so a policy denies it (MLflow would refuse it too, or could act on what the proxy missed).

use crate::mlflow::class::Class;

/// The class of a `/graphql` request with this body; `None` when it cannot be read for certain.
pub fn class_of_body(body: &[u8]) -> Option<Class> {
    let text = decode_json_text(body)?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let document = value.as_object()?.get("query")?.as_str()?;
    class_of_document(document)
}

/// The body as text, in the encoding Python's `json.loads` detects for bytes (RFC 4627's
/// null-byte pattern of the first four bytes, or a byte order mark).
fn decode_json_text(body: &[u8]) -> Option<String> {
    let units = |width: usize, big_endian: bool, skip: usize| -> Option<Vec<u32>> {
        let bytes = body.get(skip..)?;
        if bytes.len() % width != 0 {
            return None;
        }
        Some(
            bytes
                .chunks(width)
                .map(|c| {
                    let mut ordered = c.to_vec();
                    if !big_endian {
                        ordered.reverse();
                    }
                    ordered.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b))
                })
                .collect(),
        )
    };
    let utf16 = |big_endian, skip| {
        let units: Vec<u16> = units(2, big_endian, skip)?
            .into_iter()
            .map(|u| u as u16)
            .collect();
        String::from_utf16(&units).ok()
    };
    let utf32 = |big_endian, skip| {
        units(4, big_endian, skip)?
            .into_iter()
            .map(char::from_u32)
            .collect::<Option<String>>()
    };
    match body {
        [0xEF, 0xBB, 0xBF, ..] => String::from_utf8(body[3..].to_vec()).ok(),
        [0x00, 0x00, 0xFE, 0xFF, ..] => utf32(true, 4),
        [0xFF, 0xFE, 0x00, 0x00, ..] => utf32(false, 4),
        [0xFE, 0xFF, ..] => utf16(true, 2),
        [0xFF, 0xFE, ..] => utf16(false, 2),
        [0, 0, 0, _, ..] => utf32(true, 0),
        [0, _, 0, _, ..] | [0, _] => utf16(true, 0),
        [_, 0, 0, 0, ..] => utf32(false, 0),
        [_, 0, _, 0, ..] | [_, 0] => utf16(false, 0),
        _ => String::from_utf8(body.to_vec()).ok(),
    }
}

/// One lexical token of a GraphQL document, as far as the scan needs them.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Name(&'a str),
    Punct(char),
}

/// The class of a GraphQL document: `Write` when any operation is a mutation or subscription, `Read`
/// when it has operations and all are queries; `None` when it has none or cannot be scanned.
pub fn class_of_document(document: &str) -> Option<Class> {
    let tokens = tokens(document)?;
    let mut class = None;
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut expecting_definition = true;
    for token in tokens {
        if expecting_definition {
            let this = match token {
                Token::Punct('{') => Some(Class::Read),
                Token::Name("query") => Some(Class::Read),
                Token::Name("mutation") | Token::Name("subscription") => Some(Class::Write),
                Token::Name("fragment") => None,
                _ => return None,
            };
            class = class.max(this);
            expecting_definition = false;
        }
        match token {
            Token::Punct('(') => parens += 1,
            Token::Punct(')') => parens = parens.checked_sub(1)?,
            // Braces inside parentheses are object values (defaults, arguments), not selections.
            Token::Punct('{') if parens == 0 => braces += 1,
            Token::Punct('}') if parens == 0 => {
                braces = braces.checked_sub(1)?;
                expecting_definition = braces == 0;
            }
            _ => {}
        }
    }
    (braces == 0 && parens == 0 && expecting_definition)
        .then_some(class)
        .flatten()
}

/// The names and punctuation of a document, with whitespace, commas, comments, strings and numbers
/// passed over; `None` for an unterminated string or a character GraphQL does not allow.
fn tokens(document: &str) -> Option<Vec<Token<'_>>> {
    let bytes = document.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => i = skip_comment(bytes, i),
            b'"' => i = skip_string(bytes, i)?,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let end = scan_while(bytes, i, |c| c == b'_' || c.is_ascii_alphanumeric());
                out.push(Token::Name(&document[i..end]));
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                i = scan_while(bytes, i + 1, |c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-')
                })
            }
            b'{' | b'}' | b'(' | b')' | b'[' | b']' | b':' | b'=' | b'@' | b'$' | b'!' | b'|'
            | b'&' => {
                out.push(Token::Punct(char::from(b)));
                i += 1;
            }
            b'.' if bytes.get(i..i + 3) == Some(b"...") => {
                out.push(Token::Punct('.'));
                i += 3;
            }
            // A byte order mark is ignored, as GraphQL's grammar says.
            0xEF if bytes.get(i..i + 3) == Some(&[0xEF, 0xBB, 0xBF]) => i += 3,
            _ => return None,
        }
    }
    Some(out)
}

fn scan_while(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes[from..]
        .iter()
        .position(|c| !keep(*c))
        .map_or(bytes.len(), |n| from + n)
}

fn skip_comment(bytes: &[u8], from: usize) -> usize {
    scan_while(bytes, from, |c| c != b'\n' && c != b'\r')
}

/// The index after a string starting at `from` (`"…"` with escapes, or a `"""…"""` block string).
fn skip_string(bytes: &[u8], from: usize) -> Option<usize> {
    if bytes.get(from..from + 3) == Some(b"\"\"\"") {
        let mut i = from + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return Some(i + 3);
            } else {
                i += 1;
            }
        }
        return None;
    }
    let mut i = from + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' | b'\r' => return None,
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(document: &str) -> Option<Class> {
        class_of_document(document)
    }

    #[test]
    fn operations_by_kind() {
        assert_eq!(class("{ run { id } }"), Some(Class::Read));
        assert_eq!(class("query Q($id: String!) { mlflowGetRun(input: {runId: $id}) { run { info { runId } } } }"), Some(Class::Read));
        assert_eq!(class("mutation { x }"), Some(Class::Write));
        assert_eq!(class("subscription S { x }"), Some(Class::Write));
        assert_eq!(class("query A { a } mutation B { b }"), Some(Class::Write));
        assert_eq!(
            class("fragment F on Run { id } query { ...F }"),
            Some(Class::Read)
        );
        // Braces in default values and arguments are not selections.
        assert_eq!(
            class("query Q($a: In = {x: \"}\"}) { a(b: {c: 1}) } mutation { m }"),
            Some(Class::Write)
        );
    }

    #[test]
    fn what_hides_a_mutation_is_seen_through() {
        // A name, comment or string that says "mutation" is not an operation.
        assert_eq!(class("query { mutation }"), Some(Class::Read));
        assert_eq!(
            class("# mutation\nquery { a(s: \"mutation\") }"),
            Some(Class::Read)
        );
        assert_eq!(
            class("query { a(s: \"\"\"x \\\"\"\" mutation\"\"\") }"),
            Some(Class::Read)
        );
        // JSON escapes are decoded before the scan.
        let escaped = br#"{"query": "\u006dutation { deleteRun }"}"#;
        assert_eq!(class_of_body(escaped), Some(Class::Write));
    }

    #[test]
    fn bodies_in_every_encoding_python_reads() {
        let json = r#"{"query": "mutation { m }"}"#;
        let utf16le: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = json.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let utf32le: Vec<u8> = json
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        let utf32be: Vec<u8> = json
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(json.as_bytes());
        for body in [
            utf16le,
            utf16be,
            utf32le,
            utf32be,
            bom,
            json.as_bytes().to_vec(),
        ] {
            assert_eq!(class_of_body(&body), Some(Class::Write), "{body:?}");
        }
    }

    #[test]
    fn what_cannot_be_read_has_no_class() {
        for document in [
            "",
            "MUTATION { x }",
            "{ a",
            "query { a } }",
            "query { a(s: \"x) }",
            "query ( { }",
        ] {
            assert_eq!(class(document), None, "{document}");
        }
        for body in [
            &b"not json"[..],
            b"[1]",
            br#"{"query": 7}"#,
            br#""{\"query\": \"{ a }\"}""#,
        ] {
            assert_eq!(class_of_body(body), None, "{body:?}");
        }
    }
}
