//! Text logs that a client cannot forge: every field's control characters are escaped.
//!
//! A webhook `key` or an `id` comes from the client and lands in the log lines. Written raw, a
//! newline in it would start a fake log line, and an ESC would drive the operator's terminal.
//! [`text_fields`] writes `\n`, `\r`, `\t` as such and any other control character as
//! `\u{..}`; the JSON log format escapes them by itself.

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::fmt::FormatFields;

/// `s` with its control characters escaped.
///
/// ```
/// assert_eq!(strictly::serve::escape_controls("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
/// ```
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let text = escape_controls(&format!("{value:?}"));
    if field.name() == "message" {
        writer.write_str(&text)
    } else {
        write!(writer, "{}={}", field.name(), text)
    }
}

/// The field formatter of `strictly serve`'s text logs: the default layout
/// (`message key=value ...`) with control characters escaped.
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(field).delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_key_with_a_newline_and_an_escape_stays_on_one_line() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt().fmt_fields(text_fields()).with_ansi(false).with_writer(move || out.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            let id = "k1\nINFO forged line\u{1b}[2J";
            tracing::info!(id = %id, path = "model", "decision");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains(r"id=k1\nINFO forged line\u{1b}[2J"), "{text:?}");
        assert!(text.contains(r#"path="model""#), "{text:?}");
        assert!(text.contains("decision"), "{text:?}");
    }
}
