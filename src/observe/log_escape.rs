//! Control characters in log output, escaped in both formats.
//!
//! Log fields carry request data (paths, query and body values in audit subjects, identity names).
//! Written raw, a `\n` in a value forges a second log line (a fake audit event), and `\r` or ESC
//! rewrites what a terminal shows. In the text format ([`EscapedFields`]) each field is written as
//! `name=value` (the message bare), as `tracing-subscriber`'s default does, but with C0 controls, DEL,
//! C1 controls and the Unicode line separators written as escapes, so one event is always one line.
//! The JSON format's serializer escapes C0 itself; [`EscapingWriter`] escapes the rest (DEL, C1, the
//! line separators), which JSON allows raw but terminals and line-based tools do not take well.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// The field formatter for the text log format.
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapingVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> Self::Visitor {
        EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's (or span's) fields, escaped.
pub struct EscapingVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default formatter: the message bare, other strings quoted.
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let name = field.name();
        let text = format!("{value:?}");
        self.result = match name {
            "message" => write!(self.writer, "{separator}"),
            _ => write!(
                self.writer,
                "{separator}{}=",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        }
        .and_then(|()| write_escaped(&mut self.writer, &text));
    }
}

impl VisitOutput<fmt::Result> for EscapingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Writes `text` with control characters as escapes (`\n`, `\r`, `\t`, else `\u{…}`).
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            // `is_control` covers C0, DEL and C1 (NEL among them); the two Unicode line breaks too.
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                write!(out, "\\u{{{:x}}}", u32::from(c))?
            }
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Wraps the JSON format's writer: DEL, C1 controls and U+2028/U+2029, which `serde_json` leaves
/// raw, become `\u` escapes. In a JSON line these code points can only be inside strings (the syntax
/// around them is ASCII), where the escape means the same character.
pub struct EscapingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter hands over one whole event (valid UTF-8) per call; anything else is passed on.
        let Ok(text) = std::str::from_utf8(buf) else {
            return self.0.write(buf);
        };
        if !text.chars().any(needs_json_escape) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut escaped = String::with_capacity(buf.len() + 16);
        for c in text.chars() {
            if needs_json_escape(c) {
                escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
            } else {
                escaped.push(c);
            }
        }
        self.0.write_all(escaped.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// What `serde_json` writes raw but a log line should not carry: DEL, C1 controls, line separators.
fn needs_json_escape(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write_escaped(&mut out, text).unwrap();
        out
    }

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        assert_eq!(escaped("run_id=abc"), "run_id=abc");
        assert_eq!(
            escaped("a\nb\rc\td\u{1b}[31m\u{7f}\u{0}"),
            "a\\nb\\rc\\td\\u{1b}[31m\\u{7f}\\u{0}"
        );
        assert_eq!(escaped("x\u{85}y\u{2028}z"), "x\\u{85}y\\u{2028}z");
        assert_eq!(escaped("équipe-λ"), "équipe-λ");
    }

    #[test]
    fn an_event_with_a_forged_line_stays_one_line() {
        use std::sync::{Arc, Mutex};
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .with_writer(move || SinkWriter(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\nINFO audit: mlflow change who=admin";
            tracing::info!(target: "audit", who = %forged, subjects = %"run_id=a\r\u{1b}[2K", "mlflow change {}", "\n");
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        assert!(text.contains(r"who=x\nINFO audit"), "{text}");
        assert!(text.contains(r"subjects=run_id=a\r\u{1b}[2K"), "{text}");
    }

    #[test]
    fn the_json_writer_escapes_what_serde_json_leaves_raw() {
        use std::io::Write;
        let mut out = EscapingWriter(Vec::new());
        let line = format!(
            "{}\n",
            serde_json::json!({"subjects": "a\u{7f}b\u{85}c\u{2028}d\u{1b}é"})
        );
        out.write_all(line.as_bytes()).unwrap();
        let written = String::from_utf8(out.0).unwrap();
        assert_eq!(
            written,
            "{\"subjects\":\"a\\u007fb\\u0085c\\u2028d\\u001bé\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(written.trim_end()).unwrap();
        assert_eq!(parsed["subjects"], "a\u{7f}b\u{85}c\u{2028}d\u{1b}é");
    }

    struct SinkWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SinkWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
