//! The inbox line: the From name, the subject and the preview snippet, cut where Gmail's
//! inbox list cuts them, so the editor sees what a reader sees before opening the issue.
//!
//! Where the numbers come from (the widths depend on the window and the font, so these are
//! the figures measured for common cases, not a promise):
//! - **The snippet** is taken by Gmail from the start of the HTML body's text, line breaks
//!   turned into spaces, and is "consistently between 90 and 101 characters" long (a Google
//!   Apps technical specialist's reply, 22 April 2015, published as "How Gmail Handles Preview
//!   Text"). The hidden preheader is the first text of our body, followed by invisible
//!   filler (`render::html::preheader`), so the snippet is the preheader; without one it is
//!   the first words of the email. We take [`SNIPPET_CHARS`] = 100.
//! - **Desktop** (Gmail on the web): the subject, then " - " and the snippet, share one line
//!   that is cut with an ellipsis; a long subject pushes the snippet out. "Gmail (desktop): up
//!   to 70 characters" (ActiveCampaign's glossary, "Email subject line length", from
//!   Email Tool Tester's device study): [`DESKTOP_LINE_CHARS`] = 70 for the line.
//! - **Phone** (the Gmail app): the From name, the subject and the snippet each on a line of
//!   their own. The app shows 33 characters of a subject on Android and 37 on an iPhone (the
//!   same sources); we cut at the smaller, [`PHONE_LINE_CHARS`] = 33, and the snippet's line,
//!   as wide and in the same size of type, at the same count.
//! - **The From name**: about 20 to 25 characters before it is cut in the sender column and
//!   in phone apps (campaign.name's inbox-row guide): [`FROM_CHARS`] = 25.

use serde::Serialize;

pub const SNIPPET_CHARS: usize = 100;
pub const DESKTOP_LINE_CHARS: usize = 70;
pub const PHONE_LINE_CHARS: usize = 33;
pub const FROM_CHARS: usize = 25;
/// Between the subject and the snippet on Gmail's desktop line.
const DESKTOP_SEPARATOR: &str = " - ";

/// A text as the inbox shows it: what fits, and what is cut off (shown faded in the preview,
/// so the editor sees where the cut falls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub shown: String,
    pub hidden: String,
}

impl Cut {
    /// `text` cut after `limit` characters. Gmail cuts with CSS (`text-overflow: ellipsis`),
    /// mid-word, so this does too.
    pub fn at(text: &str, limit: usize) -> Cut {
        match text.char_indices().nth(limit) {
            Some((index, _)) => Cut {
                shown: text[..index].to_string(),
                hidden: text[index..].to_string(),
            },
            None => Cut {
                shown: text.to_string(),
                hidden: String::new(),
            },
        }
    }

    pub fn is_cut(&self) -> bool {
        !self.hidden.is_empty()
    }
}

/// One row of an inbox list, as Gmail shows it on a desktop and on a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inbox {
    pub from: Cut,
    pub desktop_subject: Cut,
    pub desktop_snippet: Cut,
    pub phone_subject: Cut,
    pub phone_snippet: Cut,
    /// Whether the snippet is the preheader, or the first words of the email
    /// because it has none.
    pub snippet_is_preheader: bool,
}

impl Inbox {
    /// The row for a message from `from_name` with `subject`, whose HTML part (as sent) is
    /// `html`.
    pub fn new(from_name: &str, subject: &str, html: &str, has_preheader: bool) -> Inbox {
        let snippet: String = snippet(html);
        let desktop_subject = Cut::at(subject, DESKTOP_LINE_CHARS);
        let room = DESKTOP_LINE_CHARS
            .saturating_sub(subject.chars().count() + DESKTOP_SEPARATOR.chars().count());
        Inbox {
            from: Cut::at(from_name, FROM_CHARS),
            desktop_snippet: Cut::at(&snippet, room),
            desktop_subject,
            phone_subject: Cut::at(subject, PHONE_LINE_CHARS),
            phone_snippet: Cut::at(&snippet, PHONE_LINE_CHARS),
            snippet_is_preheader: has_preheader,
        }
    }
}

/// The preview snippet Gmail takes from an HTML part: the text of the body, hidden elements
/// included (that is how a preheader gets there), whitespace collapsed, its first
/// [`SNIPPET_CHARS`] characters; the invisible filler after a preheader taken out again for
/// showing it.
pub fn snippet(html: &str) -> String {
    let text = body_text(html);
    let kept: String = text
        .chars()
        .take(SNIPPET_CHARS)
        .filter(|c| !is_invisible_filler(*c))
        .collect();
    // Figure spaces show as blanks, which a list row would not make out from one space.
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The characters the preheader's filler is made of (`&#8199;&#65279;&#847;`): a figure
/// space, a zero-width no-break space and a combining grapheme joiner.
fn is_invisible_filler(c: char) -> bool {
    matches!(
        c,
        '\u{FEFF}' | '\u{034F}' | '\u{200B}' | '\u{200C}' | '\u{200D}'
    )
}

/// Elements whose edges do not separate words.
const INLINE: [&str; 12] = [
    "a", "abbr", "b", "code", "em", "i", "small", "span", "strong", "sub", "sup", "time",
];

/// The text of the `<body>`, with tags, comments (Outlook's conditional ones too), styles
/// and scripts taken out, a space at every block's edge, entities decoded and whitespace
/// collapsed.
fn body_text(html: &str) -> String {
    let body = match html.find("<body") {
        Some(start) => &html[start..],
        None => html,
    };
    let mut raw = String::with_capacity(body.len() / 2);
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        raw.push_str(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let end = rest.find('>').map_or(rest.len(), |end| end + 1);
        let tag = &rest[1..end.saturating_sub(1).max(1)];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &rest[end..];
        if (name == "style" || name == "script") && !tag.starts_with('/') {
            let close = format!("</{name}");
            rest = rest.find(&close).map_or("", |at| &rest[at..]);
            continue;
        }
        if !INLINE.contains(&name.as_str()) {
            raw.push(' ');
        }
    }
    raw.push_str(rest);
    let decoded = decode_entities(&raw);
    let mut collapsed = String::with_capacity(decoded.len());
    for word in decoded.split(|c: char| c.is_whitespace() && c != '\u{2007}' && c != '\u{FEFF}') {
        if word.is_empty() {
            continue;
        }
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

/// The entities an HTML serialiser writes in text: the named few and numeric ones.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|end| *end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{A0}'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_falls_after_the_limit_in_characters_not_bytes() {
        assert_eq!(
            Cut::at("Café au lait", 4),
            Cut {
                shown: "Café".into(),
                hidden: " au lait".into()
            }
        );
        assert!(!Cut::at("short", 33).is_cut());
    }

    #[test]
    fn the_snippet_is_the_hidden_preheader_without_its_filler() {
        let html = "<html><head><style>.x{color:red}</style></head><body class=\"lp-body\">\
            <div class=\"lp-preheader\" style=\"display:none\">Big news &amp; more</div>\
            <div>\u{2007}\u{FEFF}\u{34F}\u{2007}\u{FEFF}\u{34F}&#8199;&#65279;&#847;</div>\
            <!--[if mso]><table><tr><td><![endif]--><h1>Global AI Weekly</h1></body></html>";
        assert_eq!(snippet(html), "Big news & more Global AI Weekly");
    }

    #[test]
    fn without_a_preheader_the_snippet_is_the_first_words_with_blocks_apart_and_inline_joined() {
        let html = "<body><h1>Weekly</h1><p>Hi <strong>Ada</strong>,</p><p>Read <a href=\"x\">this</a>.</p></body>";
        assert_eq!(snippet(html), "Weekly Hi Ada, Read this.");
        let long = format!("<body><p>{}</p></body>", "word ".repeat(40));
        assert_eq!(snippet(&long).chars().count(), SNIPPET_CHARS - 1);
    }

    #[test]
    fn on_the_desktop_a_long_subject_pushes_the_snippet_off_the_line() {
        let html = "<body><div>The preview line, after the subject</div></body>";
        let short = Inbox::new("Weekly", "Issue 1", html, true);
        assert_eq!(short.desktop_subject.shown, "Issue 1");
        assert_eq!(
            short.desktop_snippet.shown,
            "The preview line, after the subject"
        );
        let subject = "Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo";
        let long = Inbox::new("Weekly", subject, html, true);
        assert!(!long.desktop_subject.is_cut());
        // 66 characters of subject and " - " leave room for one of the snippet.
        assert_eq!(long.desktop_snippet.shown, "T");
        assert_eq!(
            long.phone_subject.shown,
            "Global AI Weekly #1: Foundation m"
        );
        assert_eq!(long.phone_subject.shown.chars().count(), PHONE_LINE_CHARS);
        assert_eq!(
            long.phone_snippet.shown,
            "The preview line, after the subje"
        );
    }
}
