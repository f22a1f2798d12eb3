//! The web archive: the issues that went out, as browser pages and an Atom feed. `serve`
//! answers with it and `render --site` writes it as static files, so both publish the same
//! bytes.
//!
//! An issue belongs to the archive once the ledger has a message of it accepted by the relay;
//! drafts, tests and issues that only failed never appear. Everything here is built from the
//! files and the ledger's send times, never from the clock, so the same state gives the same
//! site.

use std::path::Path;

use anyhow::Context as _;
use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Person, Text, WriteConfig};
use chrono::{DateTime, Utc};

use crate::ledger::SentIssue;
use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::render::web;
use crate::render::{self, View};
use crate::theme::Theme;
use crate::workspace::Workspace;

/// An issue that went out.
#[derive(Debug, Clone)]
pub struct ArchivedIssue {
    pub issue: Issue,
    pub first_sent: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Archive {
    pub newsletter: Newsletter,
    pub theme: Theme,
    /// Newest first.
    pub issues: Vec<ArchivedIssue>,
}

/// The files of the static site, by path under its folder.
pub const STYLESHEET: &str = "style.css";
pub const FEED: &str = "feed.xml";
pub const INDEX: &str = "index.html";
/// Where local images are published, under the site's root.
pub const IMAGES: &str = "images";

impl Archive {
    /// The sent issues as they went out: from the snapshot the ledger kept at their first
    /// send, or (for issues sent before snapshots were kept) from their files. One that can
    /// be read from neither is left out, and a line saying so is returned beside the archive.
    pub fn collect(
        workspace: &Workspace,
        newsletter: Newsletter,
        theme: Theme,
        sent: &[SentIssue],
    ) -> (Archive, Vec<String>) {
        let mut issues = Vec::new();
        let mut left_out = Vec::new();
        let sent_images = sent_images(workspace);
        for sent_issue in sent {
            let path = workspace.issue_path(sent_issue.issue.as_str());
            let file = workspace.display(&path);
            if let Some(snapshot) = &sent_issue.snapshot {
                let shown = format!("{file} (as sent)");
                match crate::workspace::decode_issue(snapshot, sent_issue.issue.clone(), &shown) {
                    (Some(mut issue), _) => {
                        // Its images as they went out, kept beside the snapshot; the
                        // workspace's for an issue sent before they were kept.
                        let id = sent_issue.issue.as_str();
                        crate::workspace::resolve_images_with(
                            &mut issue,
                            &shown,
                            &mut Default::default(),
                            &|relative| match sent_images.read(id, relative) {
                                Some(kept) => Ok(kept),
                                None => crate::images::read(workspace.root(), relative),
                            },
                        );
                        issues.push(ArchivedIssue {
                            issue,
                            first_sent: sent_issue.first_sent,
                        });
                    }
                    (None, _) => left_out.push(format!(
                        "{shown}: the copy kept at its first send no longer reads; left out of the archive"
                    )),
                }
                continue;
            }
            if !path.exists() {
                left_out.push(format!(
                    "{file}: was sent but the file is gone; left out of the archive"
                ));
                continue;
            }
            match workspace.load_issue(&path) {
                Ok(valid) => issues.push(ArchivedIssue {
                    issue: valid.value,
                    first_sent: sent_issue.first_sent,
                }),
                Err(_) => left_out.push(format!(
                    "{file}: was sent but does not pass `letterpress check` now; left out of the archive until fixed"
                )),
            }
        }
        (
            Archive {
                newsletter,
                theme,
                issues,
            },
            left_out,
        )
    }

    pub fn index_html(&self) -> String {
        let issues: Vec<&Issue> = self.issues.iter().map(|archived| &archived.issue).collect();
        web::archive_page(&self.newsletter, &self.theme, &issues).into_string()
    }

    /// The web version of a sent issue; `None` for any other id.
    pub fn issue_html(&self, id: &str) -> Option<String> {
        self.issues
            .iter()
            .find(|archived| archived.issue.id.as_str() == id)
            .map(|archived| render::render_web_page(&self.newsletter, &archived.issue, &self.theme))
    }

    /// The workspace's images the archived issues show, by the name they are published
    /// under (`<name>-<hash>.<ext>`), with where each file is.
    pub fn images(&self) -> std::collections::BTreeMap<String, String> {
        self.issues
            .iter()
            .flat_map(|archived| archived.issue.local_images())
            .map(|image| (image.published.clone(), image.relative.clone()))
            .collect()
    }

    pub fn stylesheet(&self) -> String {
        web::stylesheet(&self.theme)
    }

    /// The Atom feed (RFC 4287) of the sent issues, newest first.
    pub fn feed_xml(&self) -> String {
        let newsletter = &self.newsletter;
        let site = newsletter.site_url.as_ref();
        let author = Person {
            name: newsletter.name.as_str().to_string(),
            ..Default::default()
        };
        let updated = self
            .issues
            .iter()
            .map(|archived| archived.first_sent)
            .max()
            .unwrap_or(DateTime::UNIX_EPOCH);
        let mut links = vec![Link {
            href: site.map_or_else(|| "./".to_string(), |site| site.join("")),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        }];
        if let Some(site) = site {
            links.push(Link {
                href: site.join(FEED),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            });
        }
        let entries = self
            .issues
            .iter()
            .map(|archived| self.feed_entry(archived, &author))
            .collect();
        let feed = Feed {
            title: Text::plain(newsletter.name.as_str()),
            id: site.map_or_else(|| tag_uri(newsletter, "feed"), |site| site.join("")),
            updated: fixed(updated),
            authors: vec![author],
            links,
            lang: Some(newsletter.language.as_str().to_string()),
            entries,
            ..Default::default()
        };
        let config = WriteConfig {
            write_document_declaration: true,
            indent_size: Some(2),
        };
        let bytes = feed
            .write_with_config(Vec::new(), config)
            .expect("writing a feed to memory cannot fail");
        String::from_utf8(bytes).expect("the feed writer writes UTF-8")
    }

    fn feed_entry(&self, archived: &ArchivedIssue, author: &Person) -> Entry {
        let issue = &archived.issue;
        let view = View {
            web_url: None,
            ..View::new(&self.newsletter, issue, &self.theme)
        };
        let href = render::web_url(&self.newsletter, issue)
            .unwrap_or_else(|| format!("issues/{}/", issue.id));
        Entry {
            title: Text::plain(issue.subject.as_str()),
            id: render::web_url(&self.newsletter, issue)
                .unwrap_or_else(|| tag_uri(&self.newsletter, issue.id.as_str())),
            updated: fixed(archived.first_sent),
            published: Some(fixed(archived.first_sent)),
            authors: vec![author.clone()],
            links: vec![Link {
                href,
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            }],
            summary: issue
                .preheader
                .as_ref()
                .map(|preheader| Text::plain(preheader.as_str())),
            content: Some(Content {
                value: Some(web::feed_content(&view)),
                content_type: Some("html".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Writes the whole site under `dir`: `index.html`, `issues/<id>/index.html`,
    /// `feed.xml`, `style.css` and the issues' local images as `images/<name>-<hash>.<ext>`
    /// (copied from the workspace). Returns each file written (relative to `dir`) and its
    /// size.
    pub fn write_site(
        &self,
        workspace: &Workspace,
        dir: &Path,
    ) -> anyhow::Result<Vec<(String, usize)>> {
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (INDEX.to_string(), self.index_html().into_bytes()),
            (FEED.to_string(), self.feed_xml().into_bytes()),
            (STYLESHEET.to_string(), self.stylesheet().into_bytes()),
        ];
        for archived in &self.issues {
            let id = archived.issue.id.as_str();
            let html = self
                .issue_html(id)
                .expect("every archived issue has a page");
            files.push((format!("issues/{id}/{INDEX}"), html.into_bytes()));
        }
        let sent_images = sent_images(workspace);
        for (published, relative) in self.images() {
            if let Some((_, bytes)) = sent_images.by_name(&published) {
                files.push((format!("{IMAGES}/{published}"), bytes));
                continue;
            }
            let (file, bytes) = crate::images::read(workspace.root(), &relative)
                .with_context(|| format!("cannot copy the image `{relative}`"))?;
            anyhow::ensure!(
                file.published == published,
                "`{relative}` changed while the site was written; run the command again"
            );
            files.push((format!("{IMAGES}/{published}"), bytes));
        }
        let mut written = Vec::new();
        for (relative, contents) in files {
            let path = dir.join(&relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create `{}`", parent.display()))?;
            }
            std::fs::write(&path, &contents)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            written.push((relative, contents.len()));
        }
        Ok(written)
    }
}

/// The images kept at each issue's first send, in the workspace's state folder.
fn sent_images(workspace: &Workspace) -> crate::images::SentImages {
    crate::images::SentImages::in_state(crate::state::StateDir::of(workspace.root()).path())
}

/// Feeds want an offset; ours are all UTC.
fn fixed(time: DateTime<Utc>) -> FixedDateTime {
    time.fixed_offset()
}

/// A stable id (RFC 4151 tag URI) for a newsletter without a site: its sender's domain, and
/// its list id, which never changes while the name does not.
fn tag_uri(newsletter: &Newsletter, specific: &str) -> String {
    format!(
        "tag:{},2000:{}/{specific}",
        newsletter.from.address.domain().to_lowercase(),
        crate::message::list_id(newsletter)
    )
}
