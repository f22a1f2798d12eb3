//! Local images (`./images/chart.png` in an issue): the sent email loads them from the site,
//! `{site_url}/images/<name>-<hash>.<ext>`, where nothing is published yet while the issue
//! is written. The preview points those addresses at itself and answers them from the
//! workspace, so an image shows the moment it is saved.

use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::workspace::Workspace;

/// The workspace folder `letterpress init` suggests for images; the preview watches it.
pub const IMAGES_DIR: &str = "images";

/// An image as the preview serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The image a sent email names `file` (`<name>-<hash>.<ext>`), read from the workspace: only
/// a name an issue in `issues/` publishes, and only while the file still has that content.
pub fn find(workspace: &Workspace, file: &str) -> Option<LocalImage> {
    if !crate::images::is_published_name(file) {
        return None;
    }
    let relative = workspace.published_images().remove(file)?;
    let (image, bytes) = crate::images::read(workspace.root(), &relative).ok()?;
    (image.published == file).then_some(LocalImage {
        content_type: image.format.content_type(),
        bytes,
    })
}

/// The email's HTML with the addresses of the issue's local images turned into the
/// preview's own (`/images/...`); everything else, web images under the site included, is
/// left exactly as sent.
pub fn from_the_preview(html: &str, newsletter: &Newsletter, issue: &Issue) -> String {
    let Some(site) = &newsletter.site_url else {
        return html.to_string();
    };
    let mut html = html.to_string();
    for image in issue.local_images() {
        let path = format!("images/{}", image.published);
        html = html.replace(
            &format!("\"{}\"", site.join(&path)),
            &format!("\"/{path}\""),
        );
    }
    html
}
