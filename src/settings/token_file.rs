//! The token file's format: one `NAME SHA256HEX [GROUP,GROUP]` per line, `#` comments. The file holds
//! hashes only, never the tokens themselves.
//!
//! ```text
//! # name        sha256(token) in hex                                              groups (optional)
//! ci-nightly    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  ci,writers
//! ```

use crate::settings::text_source::TextSource;

#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    pub groups: Vec<String>,
}

/// The token entries with where they came from (read again on SIGHUP).
#[derive(Debug, Clone)]
pub struct TokenFile {
    pub source: TextSource,
    pub entries: Vec<TokenEntry>,
}

impl TokenFile {
    /// Reads and parses the tokens; errors name the file (or flag) and the line.
    pub fn load(source: &TextSource) -> Result<Self, String> {
        let text = source.read()?;
        let entries = parse_token_file(&text).map_err(|e| format!("{}: {e}", source.describe()))?;
        Ok(TokenFile {
            source: source.clone(),
            entries,
        })
    }
}

/// Parses the token file's text; errors name the line.
pub fn parse_token_file(text: &str) -> Result<Vec<TokenEntry>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(name), Some(hash_hex)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "line {}: expected `NAME SHA256HEX [GROUPS]`",
                index + 1
            ));
        };
        let groups = fields
            .next()
            .map(|g| {
                g.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if fields.next().is_some() {
            return Err(format!("line {}: too many fields", index + 1));
        }
        let bytes = hex::decode(hash_hex)
            .map_err(|_| format!("line {}: the hash is not hex", index + 1))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| {
            format!(
                "line {}: the hash must be 64 hex characters (SHA-256)",
                index + 1
            )
        })?;
        entries.push(TokenEntry {
            name: name.to_string(),
            hash,
            groups,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_name_the_line() {
        assert!(parse_token_file("ci\n").unwrap_err().contains("line 1"));
        assert!(parse_token_file("# x\nci abcd\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_token_file("ci zz\n").unwrap_err().contains("not hex"));
    }
}
