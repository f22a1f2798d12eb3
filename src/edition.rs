//! An edition: one issue with everything needed to build its messages, loaded and validated
//! together, as `send`, `test` and the scheduler use it.

use crate::diagnostic::Diagnostics;
use crate::message::{Kind, MessageTemplate};
use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::model::subscriber::Subscriber;
use crate::render::{self, RenderError};
use crate::theme::Theme;
use crate::workspace::{Loaded, NEWSLETTER_FILE, Workspace};

pub struct Edition {
    pub newsletter: Newsletter,
    pub theme: Theme,
    pub issue: Issue,
    pub subscribers: Vec<Subscriber>,
    /// The issue file as the user should see it.
    pub issue_file: String,
}

/// Why an edition could not be loaded: which file, and every problem found in it.
#[derive(Debug)]
pub struct EditionError {
    pub what: String,
    pub diagnostics: Diagnostics,
}

impl EditionError {
    /// The first problem, for a one-line log.
    pub fn first_problem(&self) -> String {
        self.diagnostics
            .errors()
            .next()
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("{} is invalid", self.what))
    }
}

fn take<T>(loaded: Loaded<T>, what: &str, warnings: &mut Diagnostics) -> Result<T, EditionError> {
    match loaded.value {
        Some(value) => {
            warnings.extend(loaded.diagnostics);
            Ok(value)
        }
        None => Err(EditionError {
            what: what.to_string(),
            diagnostics: loaded.diagnostics,
        }),
    }
}

impl Edition {
    /// Reads every file fresh. Warnings come back beside the edition.
    pub fn load(
        workspace: &Workspace,
        issue_argument: &str,
    ) -> Result<(Edition, Diagnostics), EditionError> {
        let mut warnings = Diagnostics::default();
        let newsletter = take(workspace.load_newsletter(), NEWSLETTER_FILE, &mut warnings)?;
        let theme = take(
            workspace.load_theme(&newsletter),
            "the theme",
            &mut warnings,
        )?;
        let path = workspace.issue_path(issue_argument);
        let issue_file = workspace.display(&path);
        let issue = take(workspace.load_issue(&path), &issue_file, &mut warnings)?;
        let subscribers_file = workspace.display(&workspace.subscribers_path(&newsletter));
        let subscribers = take(
            workspace.load_subscribers(&newsletter),
            &subscribers_file,
            &mut warnings,
        )?;
        Ok((
            Edition {
                newsletter,
                theme,
                issue,
                subscribers,
                issue_file,
            },
            warnings,
        ))
    }

    pub fn message_template(&self, kind: Kind) -> Result<MessageTemplate, RenderError> {
        let rendered = render::render(&self.newsletter, &self.issue, &self.theme)?;
        Ok(MessageTemplate::new(
            &self.newsletter,
            &self.issue,
            &rendered,
            &self.theme.texts,
            kind,
        ))
    }
}
