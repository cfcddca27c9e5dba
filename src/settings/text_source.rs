//! Text that a setting names by file or gives inline (from an environment variable).

use std::path::PathBuf;

/// Text a setting names by file or gives inline (from an environment variable).
#[derive(Clone, Debug, PartialEq)]
pub enum TextSource {
    File(PathBuf),
    Inline {
        /// The flag it came from, for messages.
        flag: &'static str,
        text: String,
    },
}

impl TextSource {
    /// The text: the file read now, or the inline value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            TextSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
            }
            TextSource::Inline { text, .. } => Ok(text.clone()),
        }
    }

    /// Where the text comes from, for messages: the file's path or the flag.
    pub fn describe(&self) -> String {
        match self {
            TextSource::File(path) => path.display().to_string(),
            TextSource::Inline { flag, .. } => (*flag).to_string(),
        }
    }
}
