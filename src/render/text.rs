//! The plain-text part, rendered from the model (not scraped from the HTML): wrapped at 78
//! columns, every link kept, inline links numbered and listed after the content.

use textwrap::Options;

use super::View;
use super::markdown::{self, Block};
use super::template::Slot;
use crate::model::issue::Article;
use crate::model::text::Markdown;

pub const WIDTH: usize = 78;

pub fn email(view: &View) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let mut links: Vec<String> = Vec::new();

    line(&mut out, view.newsletter.name.as_str());
    let meta = match &view.issue_label {
        Some(label) => format!("{label} · {}", view.date_label),
        None => view.date_label.clone(),
    };
    line(&mut out, &meta);
    if let Some(web_url) = &view.web_url {
        line(&mut out, &format!("{}: {web_url}", view.texts.view_online));
    }
    out.push('\n');
    line(&mut out, &Slot::Greeting.marker_str());
    out.push('\n');
    if let Some(intro) = &view.issue.intro {
        prose(&mut out, intro, &mut links);
    }

    for section in &view.issue.sections {
        out.push('\n');
        let heading = section.heading.as_str().to_uppercase();
        line(&mut out, &heading);
        line(
            &mut out,
            &"=".repeat(textwrap::core::display_width(&heading)),
        );
        out.push('\n');
        for article in &section.articles {
            article_block(&mut out, view, article, &mut links);
        }
    }

    if let Some(outro) = &view.issue.outro {
        out.push('\n');
        prose(&mut out, outro, &mut links);
    }

    if !links.is_empty() {
        out.push('\n');
        line(&mut out, "Links:");
        for (index, url) in links.iter().enumerate() {
            line(&mut out, &format!("[{}] {url}", index + 1));
        }
    }

    out.push('\n');
    line(&mut out, "--");
    wrapped(&mut out, &view.why_you_get_this, "");
    line(&mut out, &view.sent_to);
    out.push('\n');
    for address_line in view.newsletter.postal_address.lines() {
        line(&mut out, address_line.as_str());
    }
    out.push('\n');
    if let Some(web_url) = &view.web_url {
        line(&mut out, &format!("{}: {web_url}", view.texts.view_online));
    }
    line(
        &mut out,
        &format!(
            "{}: {}",
            view.texts.unsubscribe,
            Slot::UnsubscribeUrl.marker_str()
        ),
    );
    out
}

fn article_block(out: &mut String, view: &View, article: &Article, links: &mut Vec<String>) {
    wrapped(out, article.title.as_str(), "");
    let byline: Vec<&str> = [&article.source, &article.author]
        .into_iter()
        .flatten()
        .map(|part| part.as_str())
        .collect();
    if !byline.is_empty() {
        wrapped(out, &byline.join(" · "), "");
    }
    out.push('\n');
    prose(out, &article.excerpt, links);
    line(out, &format!("{}: {}", view.texts.read_more, article.url));
    out.push('\n');
}

fn prose(out: &mut String, markdown: &Markdown, links: &mut Vec<String>) {
    for Block { indent, text } in markdown::to_text(markdown, links) {
        for hard_line in text.split('\n') {
            wrapped(out, hard_line, &indent);
        }
        out.push('\n');
    }
}

fn wrapped(out: &mut String, text: &str, indent: &str) {
    // Long URLs stay whole (a broken link is worse than a long line), and words break only
    // at spaces: a hyphen split across lines reads as a hyphenated word.
    let options = Options::new(WIDTH)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .initial_indent(indent)
        .subsequent_indent(indent);
    for wrapped_line in textwrap::wrap(text, options) {
        line(out, &wrapped_line);
    }
}

fn line(out: &mut String, text: &str) {
    out.push_str(text.trim_end());
    out.push('\n');
}
