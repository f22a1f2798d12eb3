//! The email's HTML layout as Maud components.
//!
//! Email HTML is its own dialect: nested presentation tables instead of flexbox, widths as
//! attributes for Outlook, a fixed 600px column opened in MSO conditional comments, and
//! classes that the theme's CSS is inlined from. Each piece of the layout is a function
//! returning `Markup`, so the page reads top to bottom like the email.

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

use super::View;
use super::markdown::MarkdownHtml;
use super::template::Slot;
use crate::model::issue::{Article, Image, Section};
use crate::model::text::Markdown;

/// Content only Outlook on Windows (Word's HTML engine) sees: a fixed-width table around the
/// fluid column, because Word ignores `max-width`.
struct MsoOnly(&'static str);

impl Render for MsoOnly {
    fn render(&self) -> Markup {
        PreEscaped(format!("<!--[if mso]>{}<![endif]-->", self.0))
    }
}

const MSO_COLUMN_OPEN: MsoOnly = MsoOnly(
    r#"<table role="presentation" width="600" align="center" cellpadding="0" cellspacing="0" border="0"><tr><td>"#,
);
const MSO_COLUMN_CLOSE: MsoOnly = MsoOnly("</td></tr></table>");
const MSO_SETTINGS: MsoOnly = MsoOnly(
    "<noscript><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml></noscript>",
);

/// Where the layout is shown. An email client needs sizes inline; a browser page is styled by
/// its stylesheet alone, since its Content-Security-Policy refuses inline styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Medium {
    Email,
    Web,
}

/// The whole email, before its CSS is inlined.
pub fn email(view: &View) -> Markup {
    let language = &view.newsletter.language;
    html! {
        (DOCTYPE)
        html lang=(language.as_str()) dir=(language.direction())
            xmlns="http://www.w3.org/1999/xhtml" xmlns:o="urn:schemas-microsoft-com:office:office" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="x-apple-disable-message-reformatting";
                meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no";
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                title { (view.issue.subject) }
                (MSO_SETTINGS)
                style { (PreEscaped(&view.css.head)) }
            }
            body.lp-body {
                (preheader(view))
                table.lp-wrapper role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                    tr {
                        td.lp-wrapper-cell align="center" {
                            (MSO_COLUMN_OPEN)
                            table.lp-container role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                                (header(view))
                                (opening(view))
                                @for section in &view.issue.sections {
                                    (section_block(view, section, Medium::Email))
                                }
                                @if let Some(outro) = &view.issue.outro {
                                    (row("lp-outro lp-prose", prose(outro)))
                                }
                                (footer(view))
                            }
                            (MSO_COLUMN_CLOSE)
                        }
                    }
                }
            }
        }
    }
}

/// The inbox preview text, hidden in the body. The run of zero-width joiners after it keeps
/// clients from filling the preview with the first words of the email.
fn preheader(view: &View) -> Markup {
    html! {
        @if let Some(preheader) = &view.issue.preheader {
            div.lp-preheader aria-hidden="true" {
                (preheader)
                (PreEscaped("&#8199;&#65279;&#847;".repeat(40)))
            }
        }
    }
}

/// One full-width row of the column.
pub(super) fn row(class: &str, content: Markup) -> Markup {
    html! {
        tr { td class=(class) { (content) } }
    }
}

pub(super) fn prose(markdown: &Markdown) -> Markup {
    MarkdownHtml(markdown).render()
}

pub(super) fn header(view: &View) -> Markup {
    row(
        "lp-header",
        html! {
            @if let Some(web_url) = &view.web_url {
                p.lp-view-online { a href=(web_url) { (view.texts.view_online) } }
            }
            h1.lp-title { (view.newsletter.name) }
            p.lp-issue-meta {
                @if let Some(label) = &view.issue_label {
                    (label) " · "
                }
                time datetime=(view.issue.date.format("%Y-%m-%d").to_string()) { (view.date_label) }
            }
        },
    )
}

fn opening(view: &View) -> Markup {
    row(
        "lp-content lp-prose",
        html! {
            p.lp-greeting { (Slot::Greeting) }
            @if let Some(intro) = &view.issue.intro {
                (prose(intro))
            }
        },
    )
}

pub(super) fn section_block(view: &View, section: &Section, medium: Medium) -> Markup {
    row(
        "lp-section",
        html! {
            h2.lp-section-heading { (section.heading) }
            @for article in &section.articles {
                (article_card(view, article, medium))
            }
        },
    )
}

fn article_card(view: &View, article: &Article, medium: Medium) -> Markup {
    let byline: Vec<&str> = [&article.source, &article.author]
        .into_iter()
        .flatten()
        .map(|part| part.as_str())
        .collect();
    html! {
        table.lp-card role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
            tr {
                td.lp-card-cell {
                    @if let Some(image) = &article.image {
                        (article_image(view, image, article.url.as_str(), medium))
                    }
                    h3.lp-card-title { a href=(article.url) { (article.title) } }
                    @if !byline.is_empty() {
                        p.lp-card-meta { (byline.join(" · ")) }
                    }
                    div.lp-card-excerpt { (prose(&article.excerpt)) }
                    p.lp-card-more {
                        a href=(article.url) { (view.texts.read_more) " →" }
                    }
                }
            }
        }
    }
}

fn article_image(view: &View, image: &Image, link: &str, medium: Medium) -> Markup {
    let (width, height) = image.display_size();
    let style =
        (medium == Medium::Email).then(|| format!("width:100%;max-width:{width}px;height:auto;"));
    let src = image.src.url(view.newsletter.site_url.as_ref());
    html! {
        a href=(link) {
            img.lp-card-image src=(src) alt=(image.alt) width=(width) height=[height]
                style=[style];
        }
    }
}

fn footer(view: &View) -> Markup {
    row(
        "lp-footer",
        html! {
            p { (view.why_you_get_this) " " (view.sent_to) }
            p.lp-postal-address {
                @for (index, line) in view.newsletter.postal_address.lines().iter().enumerate() {
                    @if index > 0 { br; }
                    (line)
                }
            }
            p.lp-footer-links {
                @if let Some(web_url) = &view.web_url {
                    a href=(web_url) { (view.texts.view_online) }
                    " · "
                }
                a href=(Slot::UnsubscribeUrl) { (view.texts.unsubscribe) }
            }
        },
    )
}
