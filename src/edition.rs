//! An edition: one issue with everything needed to build its messages, loaded and validated
//! together, as `send`, `test` and the scheduler use it.

use crate::diagnostic::{Checked, Diagnostics, Valid};
use crate::message::{Kind, MessageTemplate};
use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::render::{self, RenderError};
use crate::theme::Theme;
use crate::workspace::{SubscriberList, Workspace};

pub struct Edition {
    pub newsletter: Newsletter,
    pub theme: Theme,
    pub issue: Issue,
    /// Checked, and read again as a stream by whoever needs the readers
    /// (`delivery::audience`): a list of a million is never held here.
    pub list: SubscriberList,
    /// The issue file as the user should see it.
    pub issue_file: String,
    /// The issue file's text as it was read and checked: kept by the first send as the
    /// issue's snapshot, which the archive shows.
    pub issue_source: String,
    /// The workspace's folder, where the issue's local images are.
    pub root: std::path::PathBuf,
}

impl Edition {
    /// Reads every file fresh; the warnings of all of them come back beside the edition.
    pub fn load(workspace: &Workspace, issue_argument: &str) -> Checked<Edition> {
        let mut warnings = Diagnostics::default();
        let newsletter = workspace.load_newsletter()?.collect_warnings(&mut warnings);
        let theme = workspace
            .load_theme(&newsletter)?
            .collect_warnings(&mut warnings);
        let path = workspace.issue_path(issue_argument);
        let (issue, issue_source) = workspace
            .load_issue_with_source(&path)?
            .collect_warnings(&mut warnings);
        let list = workspace
            .check_subscribers(&newsletter)?
            .collect_warnings(&mut warnings);
        Ok(Valid {
            value: Edition {
                newsletter,
                theme,
                issue,
                list,
                issue_file: workspace.display(&path),
                issue_source,
                root: workspace.root().to_path_buf(),
            },
            warnings,
        })
    }

    /// The list id of the newsletter as configured now (`message::list_id`).
    pub fn list_id(&self) -> String {
        crate::message::list_id(&self.newsletter)
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
