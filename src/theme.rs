//! A theme: the stylesheet inlined into every email and the small texts around the content.
//!
//! Themes live in `templates/<name>/` so an editor can restyle without recompiling. The
//! default theme is also built into the binary, so a workspace without a `templates/` folder
//! still renders, and a theme folder only needs the texts it changes.

use std::path::Path;

use chrono::format::{Item, StrftimeItems};

use crate::decode::Decoder;
use crate::diagnostic::{Diagnostic, Diagnostics, FieldPath, Severity};
use crate::model::newsletter::ThemeName;
use crate::source::{FileError, FileKind};
use crate::yaml;

const DEFAULT_CSS: &str = include_str!("../templates/default/style.css");
const DEFAULT_TEXTS: &str = include_str!("../templates/default/theme.yaml");

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub css: String,
    pub texts: Texts,
}

/// A stylesheet split the way email needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitCss {
    /// Plain rules, inlined into the elements they match.
    pub inline: String,
    /// At-rules (`@media`, `@font-face`...), which cannot be inlined and stay in `<style>`.
    pub head: String,
}

impl Theme {
    pub fn split_css(&self) -> SplitCss {
        split_css(&self.css)
    }
}

/// Splits a stylesheet into its top-level at-rules and everything else, respecting comments
/// and strings (a brace inside either does not count).
pub fn split_css(css: &str) -> SplitCss {
    let mut split = SplitCss::default();
    let bytes = css.as_bytes();
    let mut depth = 0usize;
    let mut start = 0;
    let mut index = 0;
    let mut statement_is_at_rule = None;
    while index < bytes.len() {
        match bytes[index] {
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                let end = css[index + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| index + 2 + end + 2);
                if depth == 0 && statement_is_at_rule.is_none() {
                    start = end;
                }
                index = end;
                continue;
            }
            quote @ (b'"' | b'\'') => {
                index += 1;
                while index < bytes.len() && bytes[index] != quote {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
            }
            byte if depth == 0 && statement_is_at_rule.is_none() && !byte.is_ascii_whitespace() => {
                statement_is_at_rule = Some(byte == b'@');
                start = index;
                if byte == b'{' {
                    depth += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        index += 1;
        let statement_ended =
            depth == 0 && statement_is_at_rule.is_some() && matches!(bytes[index - 1], b'}' | b';');
        if statement_ended {
            let target = if statement_is_at_rule == Some(true) {
                &mut split.head
            } else {
                &mut split.inline
            };
            target.push_str(css[start..index].trim());
            target.push('\n');
            statement_is_at_rule = None;
        }
    }
    split
}

#[derive(Debug, Clone, PartialEq)]
pub struct Texts {
    pub greeting: String,
    pub greeting_without_name: String,
    pub issue_label: String,
    pub date_format: String,
    pub read_more: String,
    pub view_online: String,
    pub why_you_get_this: String,
    pub sent_to: String,
    pub unsubscribe: String,
}

impl Texts {
    /// The greeting for one recipient.
    pub fn greeting_for(&self, name: Option<&str>) -> String {
        match name {
            Some(name) => self.greeting.replace("{name}", name),
            None => self.greeting_without_name.clone(),
        }
    }
}

impl Theme {
    /// The built-in default theme.
    pub fn builtin() -> Theme {
        let mut decoder = Decoder::new("templates/default/theme.yaml");
        let texts = decode_texts(&mut decoder, DEFAULT_TEXTS, None)
            .expect("the built-in theme's texts are valid");
        Theme {
            css: DEFAULT_CSS.to_string(),
            texts,
        }
    }

    /// Loads `templates/<name>/` under `root`, falling back to the built-in default theme for
    /// whatever the folder does not provide.
    pub fn load(root: &Path, name: &ThemeName) -> Result<Theme, Diagnostics> {
        let folder = Path::new("templates").join(name.as_str());
        let mut diagnostics = Diagnostics::default();
        if !root.join(&folder).is_dir() {
            if name.as_str() == "default" {
                return Ok(Theme::builtin());
            }
            diagnostics.push(file_problem(
                &folder,
                format!(
                    "theme `{}` not found: there is no folder {}/",
                    name.as_str(),
                    folder.display()
                ),
            ));
            return Err(diagnostics);
        }
        let builtin = Theme::builtin();

        let css_path = folder.join("style.css");
        let css = match crate::source::read_string(&root.join(&css_path), FileKind::Theme) {
            Ok(css) if css.to_ascii_lowercase().contains("</style") => {
                diagnostics.push(file_problem(
                    &css_path,
                    "must not contain `</style`: it would end the stylesheet early",
                ));
                None
            }
            Ok(css) => Some(css),
            Err(FileError::NotFound) => Some(builtin.css),
            Err(error) => {
                diagnostics.push(error.into_diagnostic(css_path.display().to_string()));
                None
            }
        };

        let texts_path = folder.join("theme.yaml");
        let texts = match crate::source::read_string(&root.join(&texts_path), FileKind::Theme) {
            Ok(source) => {
                let mut decoder = Decoder::new(texts_path.display().to_string());
                let texts = decode_texts(&mut decoder, &source, Some(&builtin.texts));
                diagnostics.extend(decoder.into_diagnostics());
                texts
            }
            Err(FileError::NotFound) => Some(builtin.texts),
            Err(error) => {
                diagnostics.push(error.into_diagnostic(texts_path.display().to_string()));
                None
            }
        };
        match (css, texts) {
            (Some(css), Some(texts)) if !diagnostics.has_errors() => Ok(Theme { css, texts }),
            _ => Err(diagnostics),
        }
    }
}

fn file_problem(path: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic::about_file(Severity::Error, path.display().to_string(), message)
}

/// Each text and the placeholders it may use.
const TEXT_FIELDS: [(&str, &[&str]); 9] = [
    ("greeting", &["name"]),
    ("greeting_without_name", &[]),
    ("issue_label", &["number"]),
    ("date_format", &[]),
    ("read_more", &[]),
    ("view_online", &[]),
    ("why_you_get_this", &["newsletter"]),
    ("sent_to", &["email"]),
    ("unsubscribe", &[]),
];

fn decode_texts(decoder: &mut Decoder, source: &str, fallback: Option<&Texts>) -> Option<Texts> {
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(error) => {
            decoder.error(error.mark, &FieldPath::Root, error.message);
            return None;
        }
    };
    let path = FieldPath::Root;
    let empty = yaml::Node {
        value: yaml::Value::Map(Vec::new()),
        mark: root.mark,
    };
    let root = if root.value == yaml::Value::Null {
        &empty
    } else {
        &root
    };
    let mut fields = decoder.fields(root, &path)?;
    let mut values: Vec<Option<String>> = Vec::new();
    for (key, placeholders) in TEXT_FIELDS {
        let value = match fields.get(key) {
            Some(node) => decoder.parse(node, &path.key(key), |text| {
                check_text(key, text, placeholders).map(|()| text.to_string())
            }),
            None => match fallback {
                Some(texts) => Some(text_field(texts, key).to_string()),
                None => {
                    decoder.error(fields.mark(), &path.key(key), "required field is missing");
                    None
                }
            },
        };
        values.push(value);
    }
    fields.finish(decoder, &path);
    let mut values = values
        .into_iter()
        .collect::<Option<Vec<String>>>()?
        .into_iter();
    let mut next = || values.next().expect("one value per text field");
    Some(Texts {
        greeting: next(),
        greeting_without_name: next(),
        issue_label: next(),
        date_format: next(),
        read_more: next(),
        view_online: next(),
        why_you_get_this: next(),
        sent_to: next(),
        unsubscribe: next(),
    })
}

fn text_field<'t>(texts: &'t Texts, key: &str) -> &'t str {
    match key {
        "greeting" => &texts.greeting,
        "greeting_without_name" => &texts.greeting_without_name,
        "issue_label" => &texts.issue_label,
        "date_format" => &texts.date_format,
        "read_more" => &texts.read_more,
        "view_online" => &texts.view_online,
        "why_you_get_this" => &texts.why_you_get_this,
        "sent_to" => &texts.sent_to,
        "unsubscribe" => &texts.unsubscribe,
        _ => unreachable!("TEXT_FIELDS names only these"),
    }
}

fn check_text(key: &str, text: &str, placeholders: &[&str]) -> Result<(), String> {
    crate::model::text::OneLine::parse(text).map_err(|error| error.to_string())?;
    if key == "date_format" {
        if StrftimeItems::new(text).any(|item| matches!(item, Item::Error)) {
            return Err(format!(
                "`{text}` is not a valid date format; see chrono's strftime syntax, e.g. \"%B %-d, %Y\""
            ));
        }
        // Valid strftime can still ask a date for what it has not (`%k`, an hour; `%Z`, a
        // zone): formatting would fail, and `to_string` would panic, at every render.
        let sample = chrono::NaiveDate::from_ymd_opt(2021, 8, 23).expect("a real date");
        let mut formatted = String::new();
        if std::fmt::Write::write_fmt(&mut formatted, format_args!("{}", sample.format(text)))
            .is_err()
        {
            return Err(format!(
                "`{text}` asks for a time or a time zone, which an issue's date does not have; use date fields only, e.g. \"%B %-d, %Y\""
            ));
        }
        return Ok(());
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("`{text}` has a `{{` with no closing `}}`"));
        };
        let placeholder = &after[..close];
        if !placeholders.contains(&placeholder) {
            let allowed = if placeholders.is_empty() {
                "none".to_string()
            } else {
                placeholders
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "unknown placeholder `{{{placeholder}}}`; this text may use: {allowed}"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_theme_loads_and_greets_by_name() {
        let theme = Theme::builtin();
        assert_eq!(theme.texts.greeting_for(Some("Ada")), "Hi Ada,");
        assert_eq!(theme.texts.greeting_for(None), "Hi there,");
        assert!(theme.css.contains("@media"));
    }

    #[test]
    fn a_theme_folder_overrides_only_what_it_provides() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("templates/plain");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("theme.yaml"), "greeting: \"Hello {name}!\"\n").unwrap();
        let theme = Theme::load(dir.path(), &ThemeName::parse("plain").unwrap()).unwrap();
        assert_eq!(theme.texts.greeting_for(Some("Ada")), "Hello Ada!");
        assert_eq!(theme.texts.read_more, "Read more");
        assert_eq!(theme.css, Theme::builtin().css);
    }

    #[test]
    fn unknown_placeholders_and_bad_date_formats_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("templates/x");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("theme.yaml"),
            "greeting: \"Hi {nmae}\"\ndate_format: \"%Q\"\n",
        )
        .unwrap();
        let errors = Theme::load(dir.path(), &ThemeName::parse("x").unwrap()).unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "templates/x/theme.yaml:1:11: greeting: unknown placeholder `{nmae}`; this text may use: {name}",
                "templates/x/theme.yaml:2:14: date_format: `%Q` is not a valid date format; see chrono's strftime syntax, e.g. \"%B %-d, %Y\"",
            ]
        );
    }

    #[test]
    fn a_date_format_that_asks_for_a_time_is_an_error_not_a_panic_at_render() {
        // Found by the `theme` fuzz target: `%k` is valid strftime, but a date has no hour.
        for format in ["%B %k", "%H:%M", "%Z", "%B %-d, %Y %s"] {
            assert!(
                check_text("date_format", format, &[])
                    .unwrap_err()
                    .contains("asks for a time or a time zone"),
                "{format}"
            );
        }
        for format in ["%B %-d, %Y", "%A %e %b", "%Y-%m-%d"] {
            assert_eq!(check_text("date_format", format, &[]), Ok(()), "{format}");
        }
    }

    #[test]
    fn a_missing_theme_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let errors = Theme::load(dir.path(), &ThemeName::parse("fancy").unwrap()).unwrap_err();
        assert_eq!(
            errors.iter().next().unwrap().to_string(),
            "templates/fancy: theme `fancy` not found: there is no folder templates/fancy/"
        );
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn at_rules_are_split_from_plain_rules_whatever_the_comments_and_strings() {
        let css = "/* a { } */\n.a { color: red; }\n@media (max-width: 600px) { .a { color: blue; } }\n.b::after { content: \"}\"; }\n@import url(x.css);\n";
        let split = split_css(css);
        assert_eq!(
            split.inline,
            ".a { color: red; }\n.b::after { content: \"}\"; }\n"
        );
        assert_eq!(
            split.head,
            "@media (max-width: 600px) { .a { color: blue; } }\n@import url(x.css);\n"
        );
    }
}
