//! Markdown prose to HTML and to plain text.
//!
//! Raw HTML in the source is shown as text, never passed through, and only the links the model
//! allowed (absolute http(s), mailto) become anchors: an excerpt pasted from a hostile page
//! cannot put markup or script into anybody's inbox.

use maud::{Markup, PreEscaped, Render};
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

use crate::model::text::{Markdown, is_allowed_link};

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH
}

/// Renders as safe HTML inside a Maud template: `(MarkdownHtml(&excerpt))`.
pub struct MarkdownHtml<'a>(pub &'a Markdown);

impl Render for MarkdownHtml<'_> {
    fn render(&self) -> Markup {
        let events = Parser::new_ext(self.0.source(), options()).map(|event| match event {
            // Raw HTML becomes visible text: escaped by the HTML writer like any text.
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            // The model refuses other links; this keeps the renderer safe on its own too.
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) if !is_allowed_link(&dest_url) => Event::Start(Tag::Link {
                link_type,
                dest_url: CowStr::Borrowed("#"),
                title,
                id,
            }),
            // Email clients render <h1>.. in prose at full size; prose headings become bold
            // paragraphs so the issue's own headings keep their rank.
            Event::Start(Tag::Heading { .. }) => Event::Start(Tag::Strong),
            Event::End(TagEnd::Heading(_)) => Event::End(TagEnd::Strong),
            other => other,
        });
        let mut out = String::with_capacity(self.0.source().len() * 3 / 2);
        html::push_html(&mut out, events);
        PreEscaped(out)
    }
}

/// Markdown as plain text: inline links become `text [n]`, with the URL added to `links`
/// so the caller can list them after the content.
pub fn to_text(markdown: &Markdown, links: &mut Vec<String>) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    let mut prefix_stack: Vec<ListKind> = Vec::new();
    let mut pending_link: Option<String> = None;
    let mut quote_depth = 0usize;

    let finish = |current: &mut String, blocks: &mut Vec<Block>, indent: String| {
        let text = current.trim().to_string();
        if !text.is_empty() {
            blocks.push(Block { indent, text });
        }
        current.clear();
    };

    for event in Parser::new_ext(markdown.source(), options()) {
        match event {
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                current.push_str(&text)
            }
            Event::SoftBreak => current.push(' '),
            Event::HardBreak => current.push('\n'),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => current.push('_'),
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => current.push('*'),
            Event::Start(Tag::Strikethrough) | Event::End(TagEnd::Strikethrough) => {
                current.push('~')
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                pending_link = Some(dest_url.to_string());
            }
            Event::End(TagEnd::Link) => {
                if let Some(url) = pending_link.take() {
                    // A link whose text is its own address needs no reference.
                    let shows_itself = current.ends_with(url.as_str())
                        || url
                            .strip_prefix("mailto:")
                            .is_some_and(|address| current.ends_with(address));
                    if !shows_itself && is_allowed_link(&url) {
                        let number = reference_number(links, url);
                        current.push_str(&format!(" [{number}]"));
                    }
                }
            }
            Event::Start(Tag::List(start)) => prefix_stack.push(match start {
                Some(first) => ListKind::Numbered(first),
                None => ListKind::Bullet,
            }),
            Event::End(TagEnd::List(_)) => {
                prefix_stack.pop();
            }
            Event::Start(Tag::Item) => {
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
                let depth = prefix_stack.len().saturating_sub(1);
                let marker = match prefix_stack.last_mut() {
                    Some(ListKind::Numbered(next)) => {
                        let marker = format!("{next}. ");
                        *next += 1;
                        marker
                    }
                    _ => "- ".to_string(),
                };
                current.push_str(&"  ".repeat(depth));
                current.push_str(&marker);
            }
            Event::Start(Tag::BlockQuote(_)) => quote_depth += 1,
            Event::End(TagEnd::BlockQuote(_)) => {
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
                quote_depth -= 1;
            }
            Event::Start(Tag::Heading { level, .. }) => {
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
                if level <= HeadingLevel::H2 {
                    current.push('*');
                }
            }
            Event::End(TagEnd::Heading(level)) => {
                if level <= HeadingLevel::H2 {
                    current.push('*');
                }
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock) => {
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
            }
            Event::Rule => {
                finish(&mut current, &mut blocks, quote_prefix(quote_depth));
                current.push_str("----");
            }
            _ => {}
        }
    }
    finish(&mut current, &mut blocks, quote_prefix(quote_depth));
    blocks
}

enum ListKind {
    Bullet,
    Numbered(u64),
}

fn quote_prefix(quote_depth: usize) -> String {
    "> ".repeat(quote_depth)
}

/// The 1-based number of `url` in the list of references, adding it if new.
pub fn reference_number(links: &mut Vec<String>, url: String) -> usize {
    match links.iter().position(|known| *known == url) {
        Some(index) => index + 1,
        None => {
            links.push(url);
            links.len()
        }
    }
}

/// A paragraph of plain text and the prefix each of its wrapped lines takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub indent: String,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_of(source: &str) -> String {
        MarkdownHtml(&Markdown::parse(source).unwrap())
            .render()
            .into_string()
    }

    #[test]
    fn raw_html_and_script_are_shown_as_text() {
        assert_eq!(
            html_of("Hello <script>alert(1)</script> **world**"),
            "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt; <strong>world</strong></p>\n"
        );
        assert_eq!(
            html_of("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
    }

    #[test]
    fn links_keep_their_text_and_urls_are_escaped() {
        assert_eq!(
            html_of("[the \"paper\"](https://arxiv.org/abs/2108.07258?a=1&b=2)"),
            "<p><a href=\"https://arxiv.org/abs/2108.07258?a=1&amp;b=2\">the \"paper\"</a></p>\n"
        );
    }

    #[test]
    fn plain_text_numbers_links_and_keeps_emphasis_visible() {
        let mut links = vec!["https://a.example/".to_string()];
        let blocks = to_text(
            &Markdown::parse(
                "A *new* [paper](https://b.example/) and **bold**\nline.\n\n- one\n- two [again](https://a.example/)",
            )
            .unwrap(),
            &mut links,
        );
        let texts: Vec<&str> = blocks.iter().map(|block| block.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "A _new_ paper [2] and *bold* line.",
                "- one",
                "- two again [1]"
            ]
        );
        assert_eq!(links, ["https://a.example/", "https://b.example/"]);
    }
}
