//! Bearer tokens for machines and CI, loaded from a file of SHA-256 hashes (never the tokens themselves):
//!
//! ```text
//! # name        sha256(token) in hex                                              groups (optional)
//! ci-nightly    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  ci,writers
//! ```
//!
//! A presented token is hashed and compared with every entry in constant time, so neither the match nor
//! its position shows in the timing. The file is reloaded on SIGHUP.

use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::TextSource;

#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: String,
    hash: [u8; 32],
    pub groups: Vec<String>,
}

pub struct TokenStore {
    source: TextSource,
    entries: ArcSwap<Vec<TokenEntry>>,
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

impl TokenStore {
    pub fn load(source: &TextSource) -> Result<Arc<Self>, String> {
        let entries = Self::read(source)?;
        Ok(Arc::new(TokenStore {
            source: source.clone(),
            entries: ArcSwap::from_pointee(entries),
        }))
    }

    fn read(source: &TextSource) -> Result<Vec<TokenEntry>, String> {
        let text = source.read()?;
        parse_token_file(&text).map_err(|e| format!("{}: {e}", source.describe()))
    }

    /// Re-reads the file (inline tokens stay as they are); on error the previous tokens stay in force.
    pub fn reload(&self) -> Result<usize, String> {
        let entries = Self::read(&self.source)?;
        let count = entries.len();
        self.entries.store(Arc::new(entries));
        Ok(count)
    }

    /// The entry whose hash matches `token`, compared against every entry in constant time.
    pub fn check(&self, token: &str) -> Option<TokenEntry> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let entries = self.entries.load();
        let mut found: Option<&TokenEntry> = None;
        for entry in entries.iter() {
            let matches: bool = entry.hash.ct_eq(&presented).into();
            // No early exit: every entry is compared whatever matched.
            if matches && found.is_none() {
                found = Some(entry);
            }
        }
        found.cloned()
    }

    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    #[test]
    fn parses_and_checks_tokens() {
        let file = format!(
            "# comment\n\nci {} ci,writers\nbob {}\n",
            hash("ci-secret"),
            hash("bob-secret")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, file).unwrap();
        let store = TokenStore::load(&TextSource::File(path.clone())).unwrap();
        let ci = store.check("ci-secret").unwrap();
        assert_eq!(ci.name, "ci");
        assert_eq!(ci.groups, ["ci", "writers"]);
        assert_eq!(store.check("bob-secret").unwrap().name, "bob");
        assert!(store.check("ci-secret ").is_none());
        assert!(store.check("").is_none());

        std::fs::write(&path, format!("carol {}\n", hash("carol-secret"))).unwrap();
        assert_eq!(store.reload().unwrap(), 1);
        assert!(store.check("ci-secret").is_none());
        assert_eq!(store.check("carol-secret").unwrap().name, "carol");

        std::fs::write(&path, "broken line-without-hash-hex zz\n").unwrap();
        assert!(store.reload().is_err());
        assert_eq!(
            store.check("carol-secret").unwrap().name,
            "carol",
            "a bad file keeps the old tokens"
        );
    }

    #[test]
    fn file_errors_name_the_line() {
        assert!(parse_token_file("ci\n").unwrap_err().contains("line 1"));
        assert!(parse_token_file("# x\nci abcd\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_token_file("ci zz\n").unwrap_err().contains("not hex"));
    }
}
