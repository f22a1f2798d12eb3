//! Local images, `images/...` in an issue: where the preview will serve them, at
//! `/images/<name>-<hash>.<ext>` as the sent email names them. Issues name only https images
//! for now; the code that hashes and rewrites local ones plugs in here (and `server` routes
//! `/images/{file}` to `find` already), so the preview shows them the moment they exist.

use crate::workspace::Workspace;

/// The workspace folder local images are read from; the preview watches it.
pub const IMAGES_DIR: &str = "images";

/// An image as the preview serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The image a sent email names `file` (`<name>-<hash>.<ext>`), read from `images/`. None
/// yet: nothing renders such names until local images land.
pub fn find(workspace: &Workspace, file: &str) -> Option<LocalImage> {
    let _ = (workspace, file);
    None
}
