//! Markdown prose (intro, excerpts): the model's checks, then both renderers. Whatever the
//! input, the HTML may only hold the few tags and attributes prose needs, and links only to
//! http(s), mailto or `#`.
#![no_main]

use letterpress::model::text::Markdown;
use letterpress::render::markdown::{MarkdownHtml, to_text};
use libfuzzer_sys::fuzz_target;
use maud::Render;

const TAGS: &[&str] = &[
    "p",
    "em",
    "strong",
    "del",
    "a",
    "ul",
    "ol",
    "li",
    "code",
    "pre",
    "blockquote",
    "hr",
    "br",
];
const ATTRIBUTES: &[&str] = &["href", "title", "start", "class"];

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(markdown) = Markdown::parse(source) else {
        return;
    };
    let html = MarkdownHtml(&markdown).render().into_string();
    for (name, attributes) in tags(&html) {
        assert!(TAGS.contains(&name.as_str()), "<{name}> in {html:?}");
        for (attribute, value) in attributes {
            assert!(
                ATTRIBUTES.contains(&attribute.as_str()),
                "{attribute} in {html:?}"
            );
            // The scheme is what matters: `https:example.com` is written as given, and
            // browsers read it as https://example.com/, as the model's URL parser does.
            if attribute == "href" {
                let allowed = ["https:", "http:", "mailto:", "#"]
                    .iter()
                    .any(|scheme| value.to_ascii_lowercase().starts_with(scheme));
                assert!(allowed, "href={value:?} in {html:?}");
            }
        }
    }
    let mut links = Vec::new();
    let _ = to_text(&markdown, &mut links);
});

/// Every tag's name and attributes (with their values), reading quotes as a browser does.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '<' {
            continue;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '>' || c == '/' && !name.is_empty() {
                break;
            }
            chars.next();
            if c != '/' {
                name.push(c.to_ascii_lowercase());
            }
        }
        let mut attributes = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '/') {
                chars.next();
            }
            match chars.peek() {
                None => break,
                Some('>') => {
                    chars.next();
                    break;
                }
                _ => {}
            }
            let mut attribute = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '=' || c == '>' {
                    break;
                }
                attribute.push(c.to_ascii_lowercase());
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'=') {
                chars.next();
                match chars.peek().copied() {
                    Some(quote @ ('"' | '\'')) => {
                        chars.next();
                        for c in chars.by_ref() {
                            if c == quote {
                                break;
                            }
                            value.push(c);
                        }
                    }
                    _ => {
                        while let Some(&c) = chars.peek() {
                            if c.is_whitespace() || c == '>' {
                                break;
                            }
                            value.push(c);
                            chars.next();
                        }
                    }
                }
            }
            attributes.push((attribute, value));
        }
        found.push((name, attributes));
    }
    found
}
