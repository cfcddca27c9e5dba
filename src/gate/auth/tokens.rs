//! Bearer tokens for machines and CI, checked against the hashes of the token file
//! (`settings::token_file` reads it). A presented token is hashed and compared with every entry in
//! constant time, so neither the match nor its position shows in the timing. The file is reloaded on
//! SIGHUP.

use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::text_source::TextSource;
use crate::settings::token_file::{TokenEntry, TokenFile};

pub struct TokenStore {
    source: TextSource,
    entries: ArcSwap<Vec<TokenEntry>>,
}

impl TokenStore {
    /// The store for the tokens the settings loaded.
    pub fn new(file: &TokenFile) -> Arc<Self> {
        Arc::new(TokenStore {
            source: file.source.clone(),
            entries: ArcSwap::from_pointee(file.entries.clone()),
        })
    }

    /// Re-reads the file (inline tokens stay as they are); on error the previous tokens stay in force.
    pub fn reload(&self) -> Result<usize, String> {
        let entries = TokenFile::load(&self.source)?.entries;
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
        let store = TokenStore::new(&TokenFile::load(&TextSource::File(path.clone())).unwrap());
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
}
