//! `issues/<date>.yaml`: one issue of the newsletter.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};

use crate::decode::Decoder;
use crate::diagnostic::FieldPath;
use crate::model::link::WebUrl;
use crate::model::newsletter::parse_whole_number;
use crate::model::text::{Markdown, OneLine};
use crate::yaml::{Mark, Node};

/// Subjects longer than this are cut short in most inbox lists (and RFC 5322's line length).
pub const SUBJECT_WARN_LENGTH: usize = 78;

/// The widest an image may render: the email's content column.
pub const CONTENT_WIDTH: u32 = 560;

/// The issue's file stem (`2021-08-23`): names its outbox folder, its ledger rows and its
/// Message-IDs, so it is restricted to characters that are safe in all of those.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssueId(String);

impl IssueId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && !text.starts_with('.')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(IssueId(text.to_string()))
        } else {
            Err(format!(
                "`{text}` cannot name an issue; name issue files like 2021-08-23.yaml (letters, digits, -, _ and .)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for IssueId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IssueId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Draft,
    Ready,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Draft => "draft",
            Readiness::Ready => "ready",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub id: IssueId,
    pub number: Option<u32>,
    pub date: NaiveDate,
    pub status: Readiness,
    pub subject: OneLine,
    pub preheader: Option<OneLine>,
    pub intro: Option<Markdown>,
    pub sections: Vec<Section>,
    pub outro: Option<Markdown>,
    /// A local date-time in the newsletter's zone that replaces the weekly slot.
    pub send_at: Option<NaiveDateTime>,
    /// Where fields were written, for problems found after decoding (by the scheduler, say).
    pub marks: IssueMarks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IssueMarks {
    pub top: Mark,
    pub date: Mark,
    pub status: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: OneLine,
    pub articles: Vec<Article>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub title: OneLine,
    pub url: WebUrl,
    pub source: Option<OneLine>,
    pub author: Option<OneLine>,
    pub excerpt: Markdown,
    pub image: Option<Image>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub src: WebUrl,
    pub alt: OneLine,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl Image {
    /// The size to render at: at most the content column wide, keeping the aspect ratio.
    pub fn display_size(&self) -> (u32, Option<u32>) {
        match (self.width, self.height) {
            (Some(width), Some(height)) if width > CONTENT_WIDTH => (
                CONTENT_WIDTH,
                Some((u64::from(height) * u64::from(CONTENT_WIDTH) / u64::from(width)) as u32),
            ),
            (Some(width), height) => (width.min(CONTENT_WIDTH), height),
            (None, _) => (CONTENT_WIDTH, None),
        }
    }
}

pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date; write YYYY-MM-DD, like 2021-08-23"))
}

fn parse_status(text: &str) -> Result<Readiness, String> {
    match text.trim() {
        "draft" => Ok(Readiness::Draft),
        "ready" => Ok(Readiness::Ready),
        other => Err(format!("`{other}` is not a status; use `draft` or `ready`")),
    }
}

pub fn parse_local_datetime(text: &str) -> Result<NaiveDateTime, String> {
    let text = text.trim();
    ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or_else(|| {
            format!("`{text}` is not a local date and time; write `YYYY-MM-DD HH:MM`, like \"2021-08-23 09:00\"")
        })
}

fn parse_image_size(text: &str) -> Result<u32, String> {
    parse_whole_number(text, 1, 4000)
}

/// Decodes an issue; `id` comes from the file name.
pub fn decode(decoder: &mut Decoder, root: &Node, id: IssueId) -> Option<Issue> {
    let path = FieldPath::Root;
    let mut fields = decoder.fields(root, &path)?;
    let top = fields.mark();
    let number = decoder.optional(&mut fields, &path, "number", |text| {
        parse_whole_number(text, 1, 1_000_000)
    });
    let date_node = fields.required(decoder, &path, "date");
    let date = date_node.and_then(|node| decoder.parse(node, &path.key("date"), parse_date));
    let status_node = fields.get("status");
    let status = match status_node {
        None => Some(Readiness::Draft),
        Some(node) => decoder.parse(node, &path.key("status"), parse_status),
    };
    let subject_node = fields.required(decoder, &path, "subject");
    let subject = subject_node
        .and_then(|node| decoder.parse_text(node, &path.key("subject"), OneLine::parse));
    if let (Some(subject), Some(node)) = (&subject, subject_node) {
        let length = subject.as_str().chars().count();
        if length > SUBJECT_WARN_LENGTH {
            decoder.warning(
                node.mark,
                &path.key("subject"),
                format!(
                    "{length} characters; inboxes cut subjects after about {SUBJECT_WARN_LENGTH}"
                ),
            );
        }
    }
    let preheader = decoder.optional_text(&mut fields, &path, "preheader", OneLine::parse);
    if matches!(preheader, Ok(None)) {
        // The preheader belongs beside the subject; that is where to add it.
        decoder.warning(
            fields.key_mark("subject").unwrap_or(top),
            &path.key("preheader"),
            "missing; without it inboxes preview the first words of the email instead",
        );
    }
    let intro = decode_markdown(decoder, fields.get("intro"), &path.key("intro"));
    let sections = fields
        .required(decoder, &path, "sections")
        .and_then(|node| decode_sections(decoder, node, &path.key("sections")));
    let outro = decode_markdown(decoder, fields.get("outro"), &path.key("outro"));
    let send_at = decoder.optional(&mut fields, &path, "send_at", parse_local_datetime);
    fields.finish(decoder, &path);

    if let (Some(date), Some(node)) = (date, date_node) {
        let stem_date = id
            .as_str()
            .get(..10)
            .and_then(|prefix| parse_date(prefix).ok());
        if stem_date.is_some_and(|stem_date| stem_date != date) {
            decoder.warning(
                node.mark,
                &path.key("date"),
                format!("{date} does not match the file name {id}.yaml; rename one of them"),
            );
        }
    }

    Some(Issue {
        id,
        number: number.ok()?,
        date: date?,
        status: status?,
        subject: subject?,
        preheader: preheader.ok()?,
        intro: intro.ok()?,
        sections: sections?,
        outro: outro.ok()?,
        send_at: send_at.ok()?,
        marks: IssueMarks {
            top,
            date: date_node.map_or(top, |node| node.mark),
            status: status_node.map_or(top, |node| node.mark),
        },
    })
}

fn decode_markdown(
    decoder: &mut Decoder,
    node: Option<&Node>,
    path: &FieldPath,
) -> Result<Option<Markdown>, crate::decode::Invalid> {
    let Some(node) = node else {
        return Ok(None);
    };
    let markdown = decoder
        .parse_text(node, path, Markdown::parse)
        .ok_or(crate::decode::Invalid)?;
    if markdown.has_raw_html() {
        decoder.warning(
            node.mark,
            path,
            "contains raw HTML, which is shown as text; use Markdown instead",
        );
    }
    Ok(Some(markdown))
}

fn decode_sections(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Vec<Section>> {
    let items = decoder.list(node, path)?;
    if items.is_empty() {
        decoder.error(node.mark, path, "needs at least one section");
        return None;
    }
    let sections: Vec<Option<Section>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| decode_section(decoder, item, &path.index(index)))
        .collect();
    sections.into_iter().collect()
}

fn decode_section(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Section> {
    let mut fields = decoder.fields(node, path)?;
    let heading = decoder.required_text(&mut fields, path, "heading", OneLine::parse);
    let articles = fields.required(decoder, path, "articles").and_then(|node| {
        let articles_path = path.key("articles");
        let items = decoder.list(node, &articles_path)?;
        if items.is_empty() {
            decoder.error(node.mark, &articles_path, "needs at least one article");
            return None;
        }
        let articles: Vec<Option<Article>> = items
            .iter()
            .enumerate()
            .map(|(index, item)| decode_article(decoder, item, &articles_path.index(index)))
            .collect();
        articles.into_iter().collect()
    });
    fields.finish(decoder, path);
    Some(Section {
        heading: heading?,
        articles: articles?,
    })
}

fn decode_article(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Article> {
    let mut fields = decoder.fields(node, path)?;
    let title = decoder.required_text(&mut fields, path, "title", OneLine::parse);
    let url = decoder.required(&mut fields, path, "url", WebUrl::parse);
    let source = decoder.optional_text(&mut fields, path, "source", OneLine::parse);
    let author = decoder.optional_text(&mut fields, path, "author", OneLine::parse);
    let excerpt = match fields.required(decoder, path, "excerpt") {
        Some(node) => decode_markdown(decoder, Some(node), &path.key("excerpt"))
            .ok()
            .flatten(),
        None => None,
    };
    let image = match fields.get("image") {
        None => Ok(None),
        Some(node) => decode_image(decoder, node, &path.key("image"))
            .map(Some)
            .ok_or(crate::decode::Invalid),
    };
    fields.finish(decoder, path);
    Some(Article {
        title: title?,
        url: url?,
        source: source.ok()?,
        author: author.ok()?,
        excerpt: excerpt?,
        image: image.ok()?,
    })
}

fn decode_image(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Image> {
    let mut fields = decoder.fields(node, path)?;
    let src = decoder.required(&mut fields, path, "src", WebUrl::parse);
    let alt = decoder.required_text(&mut fields, path, "alt", OneLine::parse);
    let width = decoder.optional(&mut fields, path, "width", parse_image_size);
    let height = decoder.optional(&mut fields, path, "height", parse_image_size);
    if matches!((&width, &height), (Ok(None), _) | (_, Ok(None))) {
        decoder.warning(
            fields.mark(),
            path,
            "give both `width` and `height` (in pixels) so the layout does not jump while it loads and Outlook does not show it at full size",
        );
    }
    fields.finish(decoder, path);
    Some(Image {
        src: src?,
        alt: alt?,
        width: width.ok()?,
        height: height.ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn decode_text(source: &str) -> (Option<Issue>, Vec<String>) {
        let document = yaml::parse_document(source).unwrap();
        let mut decoder = Decoder::new("issues/2021-08-23.yaml");
        decoder.set_comments(document.comments);
        let issue = decode(
            &mut decoder,
            &document.root,
            IssueId::parse("2021-08-23").unwrap(),
        );
        let messages = decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        (issue, messages)
    }

    #[test]
    fn images_wider_than_the_column_are_scaled_down_keeping_their_shape() {
        let src = WebUrl::parse("https://a.example/i.png").unwrap();
        let alt = OneLine::parse("a").unwrap();
        let image = |width, height| Image {
            src: src.clone(),
            alt: alt.clone(),
            width,
            height,
        };
        assert_eq!(
            image(Some(1120), Some(600)).display_size(),
            (560, Some(300))
        );
        assert_eq!(image(Some(300), Some(200)).display_size(), (300, Some(200)));
        assert_eq!(image(None, None).display_size(), (560, None));
    }

    #[test]
    fn an_issue_without_sections_or_subject_says_so() {
        let (issue, messages) = decode_text("date: 2021-08-23\npreheader: p\nsections: []\n");
        assert!(issue.is_none());
        assert_eq!(
            messages,
            [
                "issues/2021-08-23.yaml:1:1: subject: required field is missing",
                "issues/2021-08-23.yaml:3:11: sections: needs at least one section",
            ]
        );
    }

    #[test]
    fn a_date_that_disagrees_with_the_file_name_is_a_warning() {
        let source = "date: 2021-08-24\nsubject: s\npreheader: p\nsections:\n  - heading: h\n    articles:\n      - title: t\n        url: https://a.example/\n        excerpt: e\n";
        let (issue, messages) = decode_text(source);
        assert!(issue.is_some());
        assert_eq!(
            messages,
            [
                "issues/2021-08-23.yaml:1:7: warning: date: 2021-08-24 does not match the file name 2021-08-23.yaml; rename one of them"
            ]
        );
    }

    const ARTICLE: &str = "sections:\n  - heading: h\n    articles:\n      - title: t\n        url: https://a.example/\n        excerpt: e\n";

    #[test]
    fn a_text_value_cut_short_by_a_comment_warns_at_the_hash() {
        let source = format!(
            "date: 2021-08-23\nstatus: draft   # or ready\nnumber: 2 # second\nsubject: Deep Signal #2: Foundation models\npreheader: \"p\"  # quoted\n{ARTICLE}"
        );
        let (issue, messages) = decode_text(&source);
        assert_eq!(issue.unwrap().subject.as_str(), "Deep Signal");
        assert_eq!(
            messages,
            [
                "issues/2021-08-23.yaml:4:22: warning: subject: the rest of the line after ` #` is a YAML comment; put the value in quotes"
            ]
        );
    }

    #[test]
    fn every_text_field_of_an_article_warns_about_a_comment() {
        let source = "date: 2021-08-23\nsubject: s\npreheader: p\nintro: Hello #1\nsections:\n  - heading: News #1\n    articles:\n      - title: A #1\n        url: https://a.example/#x\n        source: Synced #1\n        author: Ada #1\n        excerpt: e #1\n        image:\n          src: https://a.example/i.png\n          alt: a #1\n          width: 10\n          height: 10\n";
        let (_, messages) = decode_text(source);
        let fields: Vec<&str> = messages
            .iter()
            .map(|message| message.split(": ").nth(2).unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "intro",
                "sections[0].heading",
                "sections[0].articles[0].title",
                "sections[0].articles[0].source",
                "sections[0].articles[0].author",
                "sections[0].articles[0].excerpt",
                "sections[0].articles[0].image.alt",
            ]
        );
    }

    #[test]
    fn the_skeletons_empty_fields_with_comments_do_not_warn_about_comments() {
        let source = "date: 2021-08-23\nsubject:             # one line, under 78 characters\npreheader:           # the preview line\nsections: []\n";
        let (_, messages) = decode_text(source);
        assert_eq!(
            messages,
            [
                "issues/2021-08-23.yaml:2:1: subject: is empty; fill it in",
                "issues/2021-08-23.yaml:2:1: warning: preheader: missing; without it inboxes preview the first words of the email instead",
                "issues/2021-08-23.yaml:4:11: sections: needs at least one section",
            ]
        );
    }

    #[test]
    fn a_missing_preheader_is_reported_at_the_subject() {
        let source = format!("number: 1\ndate: 2021-08-23\nsubject: s\n{ARTICLE}");
        let (_, messages) = decode_text(&source);
        assert_eq!(
            messages,
            [
                "issues/2021-08-23.yaml:3:1: warning: preheader: missing; without it inboxes preview the first words of the email instead"
            ]
        );
    }
}
