//! Per-token streaming: the decoded bytes, as the model commits them, turned into the API's
//! pieces (content text, a tool call's arguments, a refusal), then into SSE events.
//!
//! The model writes JSON: plain text as one JSON string, tool calls as
//! `{"name":"f","arguments":{...}}`, `{"content":"..."}` under `tool_choice: "auto"`, and
//! maybe a refusal object. [`Splitter`] reads the bytes so far and releases only what can no
//! longer change meaning: the unescaped text of a string (an escape or a character split
//! between tokens waits for its end), a tool call's name once its arguments start, the
//! arguments minus the last byte (which may be the wrapper's closing brace), and nothing while
//! the output could still be a refusal object (`{"refusal":"` so far). A refusal is sent whole
//! at the end. The pieces of a kept answer add up to exactly its final content or arguments.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::sse::Event;
use tokio::sync::mpsc;

use super::{refusal, ApiError, Mode, Output};

/// One piece of an answer, in the order it is decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Delta {
    /// More content text.
    Content(String),
    /// A tool call begins (Chat sends its id and name first, then the arguments).
    Call { id: String, name: String },
    /// More of the tool call's arguments (JSON text).
    Arguments(String),
    /// The refusal text (sent once, whole).
    Refusal(String),
}

/// What the model thread sends to the request.
pub(super) enum Msg {
    /// Pieces decoded so far (streaming only).
    Deltas(Vec<Delta>),
    /// The end: the answer (or the error) and the pieces not yet sent.
    Done(Result<Output, ApiError>, Vec<Delta>),
}

/// What the bytes so far show.
enum View {
    /// Nothing can be released yet.
    Hold,
    /// Text that will not change (a prefix of the final content).
    Content(String),
    /// A tool call, and its arguments so far.
    Call(String, String),
}

/// Turns decoded bytes into [`Delta`]s.
pub(super) struct Splitter {
    mode: Mode,
    refusable: bool,
    stop: Vec<String>,
    call_id: String,
    raw: Vec<u8>,
    content_sent: usize,
    call_sent: bool,
    args_sent: usize,
}

const CONTENT_OPENING: &[u8] = b"{\"content\":\"";
const NAME_OPENING: &[u8] = b"{\"name\":\"";
const ARGUMENTS_KEY: &[u8] = b",\"arguments\":";

impl Splitter {
    /// A splitter for one answer; `call_id` names its tool call, if it makes one.
    pub(super) fn new(mode: Mode, refusable: bool, stop: Vec<String>, call_id: String) -> Self {
        Splitter { mode, refusable, stop, call_id, raw: Vec::new(), content_sent: 0, call_sent: false, args_sent: 0 }
    }

    /// The pieces the new bytes release, and whether decoding should stop (a stop sequence).
    pub(super) fn push(&mut self, bytes: &[u8]) -> (Vec<Delta>, ControlFlow<()>) {
        self.raw.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut flow = ControlFlow::Continue(());
        match self.view() {
            View::Hold => {}
            View::Content(mut text) => {
                if self.mode == Mode::Text && !self.stop.is_empty() {
                    if cut_at_stop(&mut text, &self.stop) {
                        flow = ControlFlow::Break(());
                    } else {
                        // A stop sequence may be starting at the end: hold its length less one.
                        let hold = self.stop.iter().map(|s| s.chars().count()).max().unwrap_or(1) - 1;
                        let keep = text.char_indices().rev().nth(hold.saturating_sub(1)).map_or(0, |(i, _)| i);
                        text.truncate(if hold == 0 { text.len() } else { keep });
                    }
                }
                if let Some(new) = text.get(self.content_sent..).filter(|t| !t.is_empty()) {
                    out.push(Delta::Content(new.to_owned()));
                    self.content_sent = text.len();
                }
            }
            View::Call(name, args) => {
                if !self.call_sent {
                    out.push(Delta::Call { id: self.call_id.clone(), name });
                    self.call_sent = true;
                }
                if let Some(new) = args.get(self.args_sent..).filter(|a| !a.is_empty()) {
                    out.push(Delta::Arguments(new.to_owned()));
                    self.args_sent = args.len();
                }
            }
        }
        (out, flow)
    }

    /// The pieces of the final answer not yet sent.
    pub(super) fn finish(&mut self, out: &Output) -> Vec<Delta> {
        if let Some(r) = &out.refusal {
            return vec![Delta::Refusal(r.clone())];
        }
        let mut deltas = Vec::new();
        if let Some(rest) = out.content.as_deref().and_then(|c| c.get(self.content_sent..)).filter(|r| !r.is_empty()) {
            deltas.push(Delta::Content(rest.to_owned()));
        }
        for call in &out.tool_calls {
            if !self.call_sent {
                deltas.push(Delta::Call { id: call.id.clone(), name: call.name.clone() });
                self.call_sent = true;
            }
            if let Some(rest) = call.arguments.get(self.args_sent..).filter(|r| !r.is_empty()) {
                deltas.push(Delta::Arguments(rest.to_owned()));
            }
        }
        deltas
    }

    fn view(&self) -> View {
        let raw = &self.raw[..];
        let maybe_refusal = self.refusable && could_be(raw, refusal::OPENING.as_bytes());
        match self.mode {
            Mode::Json if maybe_refusal => View::Hold,
            Mode::Json => View::Content(utf8_prefix(raw).to_owned()),
            Mode::Text => match raw.first() {
                Some(b'"') => View::Content(unescape_prefix(&raw[1..])),
                _ => View::Hold,
            },
            Mode::Tools => {
                if let Some(rest) = raw.strip_prefix(CONTENT_OPENING) {
                    return View::Content(unescape_prefix(rest));
                }
                let Some(rest) = raw.strip_prefix(NAME_OPENING) else { return View::Hold };
                let Some(q) = rest.iter().position(|&b| b == b'"') else { return View::Hold };
                let Some(args) = rest[q + 1..].strip_prefix(ARGUMENTS_KEY) else { return View::Hold };
                let name = String::from_utf8_lossy(&rest[..q]).into_owned();
                // The last byte may be the wrapper's closing brace.
                View::Call(name, utf8_prefix(&args[..args.len().saturating_sub(1)]).to_owned())
            }
        }
    }
}

/// Whether `raw` and `opening` agree as far as both go.
fn could_be(raw: &[u8], opening: &[u8]) -> bool {
    let n = raw.len().min(opening.len());
    raw[..n] == opening[..n]
}

/// The longest prefix that is whole UTF-8.
fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// The text of a JSON string's body (after its opening quote) as far as it is certain: up to
/// the closing quote, an unfinished escape or an unfinished character.
pub(super) fn unescape_prefix(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => break,
            b'\\' => {
                let Some(&c) = body.get(i + 1) else { break };
                let simple = match c {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    i += 2;
                    continue;
                }
                let Some(hi) = hex4(body, i + 2) else { break };
                let (ch, used) = if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: the low half must follow as `\uXXXX`.
                    if body.len() < i + 12 {
                        break;
                    }
                    match (body.get(i + 6..i + 8), hex4(body, i + 8)) {
                        (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                            (char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)), 12)
                        }
                        _ => (None, 6),
                    }
                } else {
                    (char::from_u32(hi), 6)
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.unwrap_or('\u{FFFD}').encode_utf8(&mut buf).as_bytes());
                i += used;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    utf8_prefix(&out).to_owned()
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// Cuts the text at the first stop sequence; whether one was found.
pub(super) fn cut_at_stop(text: &mut String, stop: &[String]) -> bool {
    match stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        Some(cut) => {
            text.truncate(cut);
            true
        }
        None => false,
    }
}

/// A tool call's arguments exactly as decoded, from `{"name":"<name>","arguments":...}`.
pub(super) fn raw_arguments<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let opening = format!("{{\"name\":{},\"arguments\":", serde_json::to_string(name).ok()?);
    text.strip_prefix(opening.as_str())?.strip_suffix('}')
}

/// How one API writes pieces as SSE events.
pub(super) trait Wire: Send + Unpin + 'static {
    /// The events before any piece.
    fn start(&mut self) -> Vec<Event>;
    /// The events for some pieces.
    fn deltas(&mut self, deltas: &[Delta]) -> Vec<Event>;
    /// The closing events, for the final answer.
    fn finish(&mut self, out: &Output) -> Vec<Event>;
}

/// The SSE stream of one answer: events as the model thread sends pieces. Dropping it (the
/// client hung up) closes the channel, which stops the decoding at the next token.
pub(super) struct EventStream<W: Wire> {
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Keeps the queued call alive (the queue skips calls whose caller is gone).
    _alive: Box<dyn Send + Sync>,
    wire: W,
    ready: VecDeque<Event>,
    ended: bool,
}

impl<W: Wire> EventStream<W> {
    /// A stream over a started job's channel, whose first message was `first`.
    pub(super) fn new(mut wire: W, first: Msg, rx: mpsc::UnboundedReceiver<Msg>, alive: Box<dyn Send + Sync>) -> Self {
        let ready: VecDeque<Event> = wire.start().into();
        let mut s = EventStream { rx, _alive: alive, wire, ready, ended: false };
        s.take(Some(first));
        s
    }

    fn take(&mut self, msg: Option<Msg>) {
        match msg {
            Some(Msg::Deltas(d)) => {
                let events = self.wire.deltas(&d);
                self.ready.extend(events);
            }
            Some(Msg::Done(Ok(out), tail)) => {
                let mut events = self.wire.deltas(&tail);
                events.extend(self.wire.finish(&out));
                self.ready.extend(events);
                self.ended = true;
            }
            Some(Msg::Done(Err(e), _)) => {
                self.ready.push_back(error_event(&e));
                self.ended = true;
            }
            None => {
                let e = ApiError::internal("the model call ended without an answer");
                self.ready.push_back(error_event(&e));
                self.ended = true;
            }
        }
    }
}

/// An error after the stream has started: OpenAI's `{"error": {...}}` as an event.
fn error_event(e: &ApiError) -> Event {
    Event::default().data(e.body().to_string())
}

impl<W: Wire> futures_core::Stream for EventStream<W> {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(e)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(msg) => self.take(msg),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mode: Mode, refusable: bool, stop: &[&str], pieces: &[&str]) -> (Vec<Delta>, bool) {
        let mut s = Splitter::new(mode, refusable, stop.iter().map(|s| s.to_string()).collect(), "call_1".into());
        let mut all = Vec::new();
        for p in pieces {
            let (d, flow) = s.push(p.as_bytes());
            all.extend(d);
            if flow.is_break() {
                return (all, true);
            }
        }
        (all, false)
    }

    fn text(deltas: &[Delta]) -> String {
        deltas.iter().map(|d| if let Delta::Content(c) | Delta::Arguments(c) = d { c.as_str() } else { "" }).collect()
    }

    #[test]
    fn strings_are_released_unescaped_and_only_when_certain() {
        let (d, _) = split(Mode::Text, true, &[], &["\"a\\", "nb \\u00", "e9 \\ud83d", "\\ude00 ", "\"", ""]);
        assert_eq!(text(&d), "a\nb é 😀 ");
        assert!(d.len() > 1);
        assert_eq!(unescape_prefix(b"x\\\"y\" tail"), "x\"y");
    }

    #[test]
    fn a_stop_sequence_stops_and_is_never_sent() {
        let (d, stopped) = split(Mode::Text, false, &["END"], &["\"one E", "N", "D two"]);
        assert!(stopped);
        assert_eq!(text(&d), "one ");
    }

    #[test]
    fn json_waits_while_it_could_be_a_refusal() {
        let (d, _) = split(Mode::Json, true, &[], &["{\"", "ref"]);
        assert!(d.is_empty());
        let (d, _) = split(Mode::Json, true, &[], &["{\"", "team\":"]);
        assert_eq!(text(&d), "{\"team\":");
        let (d, _) = split(Mode::Json, true, &[], &["{\"refusal\":\"no", "pe\"}"]);
        assert!(d.is_empty());
    }

    #[test]
    fn tool_calls_send_the_name_then_the_arguments_without_the_wrapper() {
        let (d, _) = split(Mode::Tools, true, &[], &["{\"name\":\"look", "_up\",\"arguments\":{\"id\"", ":12}", "}"]);
        assert_eq!(d[0], Delta::Call { id: "call_1".into(), name: "look_up".into() });
        assert_eq!(text(&d), "{\"id\":12}");
        assert_eq!(raw_arguments("{\"name\":\"look_up\",\"arguments\":{\"id\":12}}", "look_up"), Some("{\"id\":12}"));
        let (d, _) = split(Mode::Tools, true, &[], &["{\"content\":\"hi ", "there\"}"]);
        assert_eq!(text(&d), "hi there");
    }
}
