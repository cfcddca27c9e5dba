//! Key safety: where the artifact store is (`s3://bucket/prefix`), and the one mapping from an artifact
//! path a client sends to an S3 key under that root. Anything that could name another key (`..`, `.`,
//! encoded `/` or `\`, absolute paths, control characters, broken escapes) is refused before any S3 call.

use crate::net::form::percent_decode_strict;

/// Why an artifact path was refused (the message of the 400 answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsafe(pub String);

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The artifact store's root: a bucket and a key prefix (no leading or trailing `/`; may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRoot {
    pub bucket: String,
    pub prefix: String,
}

impl StoreRoot {
    /// Parses `s3://bucket` or `s3://bucket/some/prefix[/]`.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("artifact store URI {uri:?} is not an s3:// URI"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(format!(
                "artifact store URI {uri:?}: {bucket:?} is not an S3 bucket name"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            check_relative(prefix)
                .map_err(|e| format!("artifact store URI {uri:?}: prefix {e}"))?;
        }
        Ok(StoreRoot {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `s3://bucket/prefix` (no trailing slash).
    pub fn uri(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The S3 key of a relative artifact path that already passed [`check_relative`] (empty = the root).
    pub fn key_of(&self, relative: &str) -> String {
        match (self.prefix.is_empty(), relative.is_empty()) {
            (true, _) => relative.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, relative),
        }
    }

    /// The key prefix that lists the children of `relative` (ends with `/`, or is empty for the bucket's root).
    pub fn dir_prefix(&self, relative: &str) -> String {
        let key = self.key_of(relative);
        if key.is_empty() {
            key
        } else {
            format!("{key}/")
        }
    }

    /// The artifact path of an S3 key, when the key lies under the root.
    pub fn relative_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    /// The key an artifact path from a URL maps to: `raw` is the still percent-encoded part after
    /// `/mlflow-artifacts/artifacts/` (or after `mpu/create/`, ...).
    pub fn key_for_url_path(&self, raw: &str) -> Result<(String, String), Unsafe> {
        let relative = decode_url_path(raw)?;
        check_relative(&relative)?;
        let key = self.key_of(&relative);
        Ok((relative, key))
    }

    /// The listing prefix for a `?path=` value (already query-decoded; absent or empty = the root).
    pub fn checked_relative(&self, path: Option<&str>) -> Result<String, Unsafe> {
        let path = path.unwrap_or_default();
        if path.starts_with('/') {
            return Err(Unsafe(format!("absolute artifact path {path:?}")));
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.is_empty() {
            return Ok(String::new());
        }
        check_relative(path)?;
        Ok(path.to_string())
    }

    /// Maps a client-side `mlflow-artifacts:` URI back into the store (`None` when it is not one).
    pub fn s3_uri_for(&self, artifacts_uri: &str) -> Option<Result<String, Unsafe>> {
        let rest = artifacts_uri.strip_prefix("mlflow-artifacts:")?;
        // `mlflow-artifacts://host:port/path` names a server; the path is what counts.
        let rest = match rest.strip_prefix("//") {
            Some(with_authority) => with_authority
                .split_once('/')
                .map(|(_, path)| path)
                .unwrap_or(""),
            None => rest.trim_start_matches('/'),
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Some(Ok(self.uri()));
        }
        Some(check_relative(rest).map(|()| format!("{}/{}", self.uri(), rest)))
    }

    /// Maps an `s3://` URI under the root to `mlflow-artifacts:/<rest>` (`None` for other values).
    pub fn client_uri_for(&self, s3_uri: &str) -> Option<String> {
        let root = self.uri();
        let rest = s3_uri.strip_prefix(root.as_str())?;
        if rest.is_empty() || rest == "/" {
            return Some("mlflow-artifacts:/".to_string());
        }
        let rest = rest.strip_prefix('/')?;
        Some(format!("mlflow-artifacts:/{rest}"))
    }
}

/// Percent-decodes a URL path, refusing encoded separators and broken or non-UTF-8 escapes.
fn decode_url_path(raw: &str) -> Result<String, Unsafe> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Unsafe(format!("broken percent-encoding in {raw:?}")))?;
            if hex == b'/' || hex == b'\\' {
                return Err(Unsafe(format!(
                    "encoded '/' or '\\' in artifact path {raw:?}"
                )));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Unsafe(format!("artifact path {raw:?} is not UTF-8")))
}

/// A relative artifact path is safe when it names a key under the root and nothing else.
pub fn check_relative(path: &str) -> Result<(), Unsafe> {
    if path.starts_with('/') {
        return Err(Unsafe(format!("absolute artifact path {path:?}")));
    }
    if path.contains('\\') {
        return Err(Unsafe(format!("'\\' in artifact path {path:?}")));
    }
    if path.chars().any(char::is_control) {
        return Err(Unsafe(format!(
            "control character in artifact path {path:?}"
        )));
    }
    if path.len() > 1024 {
        return Err(Unsafe(
            "artifact path longer than S3's 1024-byte keys".into(),
        ));
    }
    if path.contains("://") || path.split('/').next().is_some_and(|s| s.ends_with(':')) {
        return Err(Unsafe(format!("artifact path {path:?} names a URI")));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(Unsafe(format!("empty segment in artifact path {path:?}"))),
            "." | ".." => {
                return Err(Unsafe(format!(
                    "'.' or '..' segment in artifact path {path:?}"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The last segment of a key or path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Query-string decoding as MLflow's server does it (`+` is a space), strict about escapes and about
/// UTF-8 (an artifact path that is not text is refused, not repaired).
pub fn decode_query_value(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    String::from_utf8(percent_decode_strict(&spaced)?.into_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> StoreRoot {
        StoreRoot::parse("s3://my-bucket/mlflow/").unwrap()
    }

    #[test]
    fn parses_store_uris() {
        assert_eq!(
            root(),
            StoreRoot {
                bucket: "my-bucket".into(),
                prefix: "mlflow".into()
            }
        );
        assert_eq!(StoreRoot::parse("s3://b-1.x").unwrap().prefix, "");
        assert_eq!(
            StoreRoot::parse("s3://bkt/a/b").unwrap().uri(),
            "s3://bkt/a/b"
        );
        for bad in [
            "http://b/x",
            "s3://",
            "s3://UPPER/x",
            "s3://ab/x",
            "s3://bucket/../x",
            "s3://bucket//x",
            "s3://bucket/a/./b",
        ] {
            assert!(StoreRoot::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maps_url_paths_under_the_root() {
        let r = root();
        assert_eq!(
            r.key_for_url_path("1/abc/artifacts/a%20b%2Bc.txt").unwrap(),
            (
                "1/abc/artifacts/a b+c.txt".to_string(),
                "mlflow/1/abc/artifacts/a b+c.txt".to_string()
            )
        );
        assert_eq!(
            r.key_for_url_path("x/a+b").unwrap().1,
            "mlflow/x/a+b",
            "'+' in a path is a plus"
        );
        assert_eq!(
            r.key_for_url_path("x/.hidden/a..b").unwrap().1,
            "mlflow/x/.hidden/a..b"
        );
        let no_prefix = StoreRoot::parse("s3://bucket").unwrap();
        assert_eq!(no_prefix.key_for_url_path("0/r/f").unwrap().1, "0/r/f");
    }

    #[test]
    fn refuses_anything_that_could_leave_the_root() {
        let r = root();
        for bad in [
            "../x",
            "0/../../x",
            "0/%2e%2e/x",
            "0/%2E%2E/x",
            "0/%2e/x",
            "0/a%2Fb",
            "0/a%2fb",
            "0/a%5Cb",
            "0/a\\b",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "0//x",
            "",
            "0/x%00",
            "0/x%0a",
            "0/%zz",
            "0/%e2%28",
            "s3:%2F%2Fother/secret",
            "s3://other/secret",
            "s3:/other/secret",
        ] {
            assert!(r.key_for_url_path(bad).is_err(), "{bad} must be refused");
        }
        for bad in ["..", "0/../..", "/", "/etc", "0//", "a\\b", ".", "s3://x/y"] {
            assert!(r.checked_relative(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(r.checked_relative(None).unwrap(), "");
        assert_eq!(r.checked_relative(Some("0/r/")).unwrap(), "0/r");
    }

    #[test]
    fn listing_prefixes_and_relative_keys() {
        let r = root();
        assert_eq!(r.dir_prefix(""), "mlflow/");
        assert_eq!(r.dir_prefix("0/r"), "mlflow/0/r/");
        assert_eq!(r.relative_of("mlflow/0/r/x"), Some("0/r/x"));
        assert_eq!(r.relative_of("mlflowx/0"), None);
        assert_eq!(r.relative_of("other/0"), None);
        let bare = StoreRoot::parse("s3://bucket").unwrap();
        assert_eq!(bare.dir_prefix(""), "");
        assert_eq!(bare.dir_prefix("a"), "a/");
    }

    #[test]
    fn uri_mapping_both_ways() {
        let r = root();
        assert_eq!(
            r.client_uri_for("s3://my-bucket/mlflow/1/abc/artifacts")
                .as_deref(),
            Some("mlflow-artifacts:/1/abc/artifacts")
        );
        assert_eq!(
            r.client_uri_for("s3://my-bucket/mlflow").as_deref(),
            Some("mlflow-artifacts:/")
        );
        assert_eq!(r.client_uri_for("s3://my-bucket/mlflowx/1"), None);
        assert_eq!(r.client_uri_for("s3://other/mlflow/1"), None);
        assert_eq!(r.client_uri_for("runs:/abc/model"), None);
        assert_eq!(
            r.s3_uri_for("mlflow-artifacts:/1/abc/artifacts/m")
                .unwrap()
                .unwrap(),
            "s3://my-bucket/mlflow/1/abc/artifacts/m"
        );
        assert_eq!(
            r.s3_uri_for("mlflow-artifacts://proxy:8080/1/x")
                .unwrap()
                .unwrap(),
            "s3://my-bucket/mlflow/1/x"
        );
        assert!(r
            .s3_uri_for("mlflow-artifacts:/../../other")
            .unwrap()
            .is_err());
        assert!(r.s3_uri_for("s3://my-bucket/mlflow/1").is_none());
    }

    #[test]
    fn query_values_decode_like_mlflow() {
        assert_eq!(decode_query_value("a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(decode_query_value("0%2F%2F").as_deref(), Some("0//"));
        assert_eq!(decode_query_value("%zz"), None);
    }
}
