//! Text fields: one-line labels (subjects, titles, names) and Markdown prose.
//!
//! Control characters are refused everywhere: in a header they are an injection, in HTML they
//! are invisible noise. Unicode noncharacters are refused too, because the renderer uses them
//! to mark where per-recipient values go.

use std::fmt;

use pulldown_cmark::{Event, Parser, Tag};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be one line (found a line break)")]
    LineBreak,
    #[error("contains the control character U+{0:04X}; remove it")]
    Control(u32),
    #[error("contains the Unicode noncharacter U+{0:04X}; remove it")]
    Noncharacter(u32),
}

/// Noncharacters are "permanently reserved for internal use" (Unicode ch. 23.7): the renderer
/// takes a few of them as slot markers, so input must never carry any.
pub fn is_noncharacter(c: char) -> bool {
    let code = c as u32;
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

fn check_characters(text: &str, allow_line_breaks: bool) -> Result<(), TextError> {
    for c in text.chars() {
        match c {
            '\n' | '\r' if !allow_line_breaks => return Err(TextError::LineBreak),
            '\n' | '\t' => {}
            c if c.is_control() => return Err(TextError::Control(c as u32)),
            c if is_noncharacter(c) => return Err(TextError::Noncharacter(c as u32)),
            _ => {}
        }
    }
    Ok(())
}

/// A non-empty line of text with no control characters: safe in a header and in a title.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OneLine(String);

impl OneLine {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        check_characters(text, false)?;
        Ok(OneLine(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OneLine {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OneLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Plain text that may span lines, such as a postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines(Vec<OneLine>);

impl Lines {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        check_characters(text, true)?;
        let lines: Vec<OneLine> = text
            .lines()
            .filter_map(|l| OneLine::parse(l).ok())
            .collect();
        if lines.is_empty() {
            return Err(TextError::Empty);
        }
        Ok(Lines(lines))
    }

    pub fn lines(&self) -> &[OneLine] {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkdownError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("link `{0}` must be an absolute http(s) or mailto URL")]
    Link(String),
    #[error(
        "images are not allowed in Markdown (`![..]({0})`); give the article an `image` instead"
    )]
    Image(String),
}

/// Markdown prose (an intro, an excerpt). Raw HTML in it is shown as text, never passed
/// through; every link is absolute and http(s) or mailto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markdown {
    source: String,
    has_raw_html: bool,
}

impl Markdown {
    pub fn parse(source: &str) -> Result<Self, MarkdownError> {
        check_characters(source, true)?;
        if source.trim().is_empty() {
            return Err(TextError::Empty.into());
        }
        let mut has_raw_html = false;
        for event in Parser::new(source) {
            match event {
                Event::Start(Tag::Link { dest_url, .. }) if !is_allowed_link(&dest_url) => {
                    return Err(MarkdownError::Link(dest_url.to_string()));
                }
                Event::Start(Tag::Image { dest_url, .. }) => {
                    return Err(MarkdownError::Image(dest_url.to_string()));
                }
                Event::Html(_) | Event::InlineHtml(_) => has_raw_html = true,
                _ => {}
            }
        }
        Ok(Markdown {
            source: source.trim_end().to_string(),
            has_raw_html,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Raw HTML is legal but shown as text; `check` warns so the editor is not surprised.
    pub fn has_raw_html(&self) -> bool {
        self.has_raw_html
    }
}

pub fn is_allowed_link(destination: &str) -> bool {
    if let Some(address) = destination.strip_prefix("mailto:") {
        return !address.is_empty();
    }
    super::link::WebUrl::parse(destination).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_text_is_trimmed_and_refuses_breaks_and_controls() {
        assert_eq!(OneLine::parse("  Hello  ").unwrap().as_str(), "Hello");
        assert_eq!(OneLine::parse("a\r\nBcc: x"), Err(TextError::LineBreak));
        assert_eq!(OneLine::parse("a\u{7}"), Err(TextError::Control(7)));
        assert_eq!(OneLine::parse("   "), Err(TextError::Empty));
        assert_eq!(
            OneLine::parse("a\u{FDD0}"),
            Err(TextError::Noncharacter(0xFDD0))
        );
        assert_eq!(OneLine::parse("日本語 🎉").unwrap().as_str(), "日本語 🎉");
    }

    #[test]
    fn markdown_refuses_script_links_relative_links_and_images() {
        assert_eq!(
            Markdown::parse("[x](javascript:alert(1))"),
            Err(MarkdownError::Link("javascript:alert(1)".into()))
        );
        assert_eq!(
            Markdown::parse("[x](/relative)"),
            Err(MarkdownError::Link("/relative".into()))
        );
        assert!(matches!(
            Markdown::parse("![x](https://a.example/i.png)"),
            Err(MarkdownError::Image(_))
        ));
        assert!(Markdown::parse("[x](https://a.example/) and [y](mailto:a@example.com)").is_ok());
    }

    #[test]
    fn markdown_notes_raw_html_so_check_can_warn() {
        assert!(
            Markdown::parse("a <b>bold</b> move")
                .unwrap()
                .has_raw_html()
        );
        assert!(!Markdown::parse("a **bold** move").unwrap().has_raw_html());
    }
}
