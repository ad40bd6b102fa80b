//! The review page's HTML: an escaping writer and the page's parts. Every string that comes
//! from a record (the customer's text, ids, rules, phrases) goes through [`Html::text`] or
//! [`Html::attr`]; only the literal markup of this file is written raw.

use std::fmt::Write;

use super::{Accuracy, Entry, RouteOption};

/// `&`, `<`, `>`, `"` and `'` as character references: safe in element content and in a
/// quoted attribute value.
///
/// ```
/// # use strictly::serve::escape_html;
/// assert_eq!(escape_html(r#"<script>alert("x")</script> & 'y'"#), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
/// ```
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page under construction: literal markup in, escaped values in.
#[derive(Default)]
pub(super) struct Html(String);

impl Html {
    /// Literal markup from this file.
    fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// A value as element content.
    fn text(&mut self, value: &str) -> &mut Self {
        self.0.push_str(&escape_html(value));
        self
    }

    /// An attribute with a value, in double quotes.
    fn attr(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(self.0, " {name}=\"{}\"", escape_html(value));
        self
    }

    pub(super) fn finish(self) -> String {
        self.0
    }
}

fn head(h: &mut Html, title: &str) {
    h.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
        .text(title)
        .raw("</title><link rel=\"stylesheet\" href=\"/review.css\"></head><body>\n");
}

/// The login form (`POST /review/login`), with an error line when a key was refused.
pub(super) fn login_page(error: Option<&str>) -> String {
    let mut h = Html::default();
    head(&mut h, "strictly review: sign in");
    h.raw("<main class=\"login\"><h1>strictly review</h1>\n");
    if let Some(e) = error {
        h.raw("<p class=\"err\" id=\"login-error\">").text(e).raw("</p>\n");
    }
    h.raw(concat!(
        "<form method=\"post\" action=\"/review/login\">",
        "<label>API key <input type=\"password\" name=\"key\" id=\"key\" autocomplete=\"current-password\" required></label> ",
        "<button type=\"submit\" id=\"sign-in\">Sign in</button></form>\n",
        "</main></body></html>\n"
    ));
    h.finish()
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The page: the decisions (lowest confidence first), then the accuracy table.
pub(super) fn review_page(entries: &[Entry], options: &[RouteOption], accuracy: &[Accuracy], notes: &[String], signed_in: bool) -> String {
    let mut h = Html::default();
    head(&mut h, "strictly review");
    h.raw("<header><h1>strictly review</h1>");
    if signed_in {
        h.raw("<form method=\"post\" action=\"/review/logout\"><button type=\"submit\">Sign out</button></form>");
    }
    h.raw("</header>\n<main>\n");
    for n in notes {
        h.raw("<p class=\"note\">").text(n).raw("</p>\n");
    }
    let _ = writeln!(h.0, "<h2>Decisions <small>({} recent, lowest confidence first)</small></h2>", entries.len());
    h.raw("<table id=\"decisions\"><thead><tr><th>time</th><th>message</th><th>decided</th><th>rule / path</th><th>confidence</th><th>nearest phrases</th><th>correct to</th></tr></thead><tbody>\n");
    for e in entries {
        h.raw("<tr class=\"decision\"").attr("data-id", &e.id).attr("data-decision", &e.decision_id).raw(">");
        h.raw("<td class=\"time\">").text(&e.time).raw("</td>");
        h.raw("<td class=\"message\">").text(&e.text).raw("</td>");
        h.raw("<td class=\"decided\">").text(&e.decided).raw("</td>");
        h.raw("<td class=\"rule\">").text(&e.rules.join(", ")).raw(" / ").text(&e.path).raw("</td>");
        h.raw("<td class=\"confidence\">");
        match e.confidence {
            Some((c, kind)) => {
                let _ = write!(h.0, "{c:.2}");
                h.raw(" <small>").text(kind).raw("</small>");
            }
            None => {
                h.raw("–");
            }
        }
        h.raw("</td><td class=\"nearest\"><ol>");
        for (phrase, route, similarity) in &e.nearest {
            h.raw("<li>").text(phrase).raw(" <small>→ ").text(route);
            let _ = write!(h.0, " ({similarity:.2})");
            h.raw("</small></li>");
        }
        h.raw("</ol></td><td class=\"correct\">");
        if let Some(c) = &e.corrected {
            h.raw("<p class=\"ok\">corrected to ").text(c).raw("</p>");
        }
        h.raw("<select aria-label=\"correct route\">");
        for o in options {
            h.raw("<option").attr("value", &o.value).raw(">").text(&o.label).raw("</option>");
        }
        h.raw("</select> <button type=\"button\" class=\"correct\">Correct</button><output class=\"result\"></output></td></tr>\n");
    }
    h.raw("</tbody></table>\n");
    h.raw("<h2>Accuracy by route <small>(from corrections, by day, UTC)</small></h2>\n");
    h.raw("<table id=\"accuracy\"><thead><tr><th>day</th><th>route</th><th>decisions</th><th>corrected</th><th>accuracy</th></tr></thead><tbody>\n");
    for a in accuracy {
        h.raw("<tr><td>").text(&a.day).raw("</td><td>").text(&a.route).raw("</td>");
        let _ = writeln!(h.0, "<td>{}</td><td>{}</td><td>{}</td></tr>", a.decisions, a.corrected, percent(a.accuracy()));
    }
    h.raw("</tbody></table>\n</main>\n<script src=\"/review.js\"></script>\n</body></html>\n");
    h.finish()
}
