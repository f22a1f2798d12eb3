//! Images that live in the workspace (`images/foundation-models.png`) rather than on the web:
//! read without trusting them (a regular file inside the workspace, at most 1 MiB), known by
//! their content (PNG, JPEG, GIF or WebP, whatever the name says), measured, and published
//! under a name carrying a hash of their bytes, so a changed picture gets a new URL and no
//! cache ever shows a stale one.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Larger images are refused: an email's pictures are fetched by every reader's client.
pub const IMAGE_LIMIT: u64 = 1 << 20;
/// Above this, a warning: most newsletter images are well under it.
pub const IMAGE_WARN: u64 = 200 * 1024;

/// What kind of picture a file is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Gif => "gif",
            Format::WebP => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Gif => "image/gif",
            Format::WebP => "image/webp",
        }
    }

    pub fn from_extension(extension: &str) -> Option<Format> {
        [Format::Png, Format::Jpeg, Format::Gif, Format::WebP]
            .into_iter()
            .find(|format| format.extension() == extension)
    }
}

/// A local image, read and measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Where it is, relative to the workspace, as the issue names it.
    pub relative: String,
    /// The name it is published under: `<stem>-<first 8 hex of its SHA-256>.<ext>`.
    pub published: String,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// Why a local image cannot be used; each reads after `src:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error(
        "`{0}` is not a path inside the workspace: write it like images/picture.png, without `..`"
    )]
    Outside(String),
    #[error("`{0}` leads outside the workspace (a link to `{1}`); keep the picture itself in it")]
    LinksOutside(String, String),
    #[error("`{0}`: file not found")]
    NotFound(String),
    #[error("`{0}` is not a regular file")]
    NotRegular(String),
    #[error(
        "`{path}` is {}, over the 1 MiB limit for an image in an email; make it smaller (a 1200 px wide JPEG or PNG is usually under 200 KiB)",
        crate::units::human_size(*size as usize)
    )]
    TooBig { path: String, size: u64 },
    #[error("`{0}` is not a PNG, JPEG, GIF or WebP image (by its content)")]
    NotAnImage(String),
    #[error("`{0}`: its size cannot be read from the file; it may be damaged")]
    NoSize(String),
    #[error("`{path}` cannot be read: {message}")]
    Unreadable { path: String, message: String },
}

/// Whether `text` names a file in the workspace rather than a web address: no scheme, not
/// absolute.
pub fn is_local(text: &str) -> bool {
    let text = text.trim();
    !text.contains("://") && !text.contains(':') && !text.starts_with('/')
}

/// A relative path that stays inside the workspace: plain names only, no `..`, no root.
pub fn check_relative(text: &str) -> Result<PathBuf, ImageError> {
    let text = text.trim();
    let path = Path::new(text);
    let plain = !text.is_empty()
        && !text.contains('\\')
        && !text.chars().any(char::is_control)
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
        && path
            .components()
            .any(|component| matches!(component, Component::Normal(_)));
    if plain {
        Ok(path.to_path_buf())
    } else {
        Err(ImageError::Outside(text.to_string()))
    }
}

/// Reads, checks and measures the image `relative` names under `root`. A symbolic link is
/// followed only if where it leads is inside the workspace too.
pub fn read(root: &Path, relative: &str) -> Result<(ImageFile, Vec<u8>), ImageError> {
    let path = root.join(check_relative(relative)?);
    let unreadable = |error: std::io::Error| ImageError::Unreadable {
        path: relative.to_string(),
        message: error.to_string(),
    };
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::NotFound(relative.to_string()));
        }
        Err(error) => return Err(unreadable(error)),
    };
    let real_root = root.canonicalize().map_err(unreadable)?;
    if !real.starts_with(&real_root) {
        return Err(ImageError::LinksOutside(
            relative.to_string(),
            real.display().to_string(),
        ));
    }
    let metadata = std::fs::metadata(&real).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(ImageError::NotRegular(relative.to_string()));
    }
    if metadata.len() > IMAGE_LIMIT {
        return Err(ImageError::TooBig {
            path: relative.to_string(),
            size: metadata.len(),
        });
    }
    let bytes =
        crate::source::read_bytes(&real, crate::source::FileKind::Image).map_err(|error| {
            ImageError::Unreadable {
                path: relative.to_string(),
                message: error.to_string(),
            }
        })?;
    let file = measure(relative, &bytes)?;
    Ok((file, bytes))
}

/// Where an issue's local image is read from, by the path the issue gives.
pub type ReadImage<'a> = dyn Fn(&str) -> Result<(ImageFile, Vec<u8>), ImageError> + 'a;

/// The local images of sent issues, kept in `.letterpress/images/` as they went out: an
/// editor who saves a new `chart.png` for next week must not break the picture in last week's
/// emails, which name the old one (`chart-1a2b3c4d.png`). Each issue's first send keeps its
/// images and a list of them (`<issue>.sent`, a line `relative<TAB>published` each), as the
/// ledger keeps the issue's text.
pub struct SentImages {
    dir: PathBuf,
}

impl SentImages {
    /// The store in the state folder `state` (`.letterpress/`).
    pub fn in_state(state: &Path) -> SentImages {
        SentImages {
            dir: state.join("images"),
        }
    }

    /// Keeps the images `issue` shows, read from the workspace at `root`, unless its first
    /// send kept them already. An image whose file changed since the issue was checked (so
    /// it no longer has the name the emails carry) is left to the workspace.
    pub fn keep<'a>(
        &self,
        issue: &str,
        root: &Path,
        images: impl Iterator<Item = &'a ImageFile>,
    ) -> std::io::Result<()> {
        let list = self.dir.join(format!("{issue}.sent"));
        if list.exists() {
            return Ok(());
        }
        let mut lines = String::new();
        for image in images {
            let Ok((file, bytes)) = read(root, &image.relative) else {
                continue;
            };
            if file.published != image.published {
                continue;
            }
            std::fs::create_dir_all(&self.dir)?;
            let kept = self.dir.join(&file.published);
            if !kept.exists() {
                write_whole(&kept, &bytes)?;
            }
            lines.push_str(&format!("{}\t{}\n", image.relative, file.published));
        }
        if lines.is_empty() {
            return Ok(());
        }
        write_whole(&list, lines.as_bytes())
    }

    /// The copy of `relative` kept at `issue`'s first send, measured, if there is one.
    pub fn read(&self, issue: &str, relative: &str) -> Option<(ImageFile, Vec<u8>)> {
        let list = bounded(&self.dir.join(format!("{issue}.sent")))?;
        let list = String::from_utf8(list).ok()?;
        let published = list
            .lines()
            .find_map(|line| line.split_once('\t').filter(|(kept, _)| *kept == relative))?
            .1;
        let bytes = self.published(published)?;
        let file = measure(relative, &bytes).ok()?;
        (file.published == published).then_some((file, bytes))
    }

    /// The kept image published as `name`, if its bytes still have that name's hash.
    pub fn by_name(&self, name: &str) -> Option<(Format, Vec<u8>)> {
        let bytes = self.published(name)?;
        let format = sniff(&bytes)?;
        Some((format, bytes))
    }

    fn published(&self, name: &str) -> Option<Vec<u8>> {
        if !is_published_name(name) {
            return None;
        }
        let bytes = bounded(&self.dir.join(name))?;
        matches_published(name, &bytes).then_some(bytes)
    }
}

/// A regular file's bytes, if it has at most an image's limit of them (a list of names is
/// far smaller). Opened without waiting, like every file we read: see `source`.
fn bounded(path: &Path) -> Option<Vec<u8>> {
    crate::source::read_bytes(path, crate::source::FileKind::Image).ok()
}

/// Written aside and renamed, so a reader never finds half a file.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    crate::delivery::transport::write_private(&partial, bytes)?;
    std::fs::rename(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Knows and measures an image from its bytes.
pub fn measure(relative: &str, bytes: &[u8]) -> Result<ImageFile, ImageError> {
    let format = sniff(bytes).ok_or_else(|| ImageError::NotAnImage(relative.to_string()))?;
    let (width, height) = dimensions(format, bytes)
        .filter(|(width, height)| *width > 0 && *height > 0)
        .ok_or_else(|| ImageError::NoSize(relative.to_string()))?;
    let hash = short_hash(bytes);
    let stem: String = Path::new(relative)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("image")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Ok(ImageFile {
        relative: relative.to_string(),
        published: format!("{stem}-{hash}.{}", format.extension()),
        format,
        width,
        height,
        bytes: bytes.len() as u64,
    })
}

/// The published name's hash part: whether `bytes` are the image `published` names.
pub fn matches_published(published: &str, bytes: &[u8]) -> bool {
    let hash = short_hash(bytes);
    published
        .rsplit_once('.')
        .and_then(|(name, _)| name.rsplit_once('-'))
        .is_some_and(|(_, found)| found == hash)
}

/// The first 8 hex digits of the bytes' SHA-256.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `name` has the shape of a published image name, `<stem>-<8 hex>.<ext>`: what
/// `serve` checks before looking for it.
pub fn is_published_name(name: &str) -> bool {
    let Some((rest, extension)) = name.rsplit_once('.') else {
        return false;
    };
    let Some((stem, hash)) = rest.rsplit_once('-') else {
        return false;
    };
    Format::from_extension(extension).is_some()
        && hash.len() == 8
        && hash
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        && stem
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else {
        None
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        bytes.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le16(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        bytes.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let part = bytes.get(at..at + 3)?;
    Some(u32::from(part[0]) | u32::from(part[1]) << 8 | u32::from(part[2]) << 16)
}

/// Width and height from the format's header, without decoding the picture.
fn dimensions(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
    match format {
        // IHDR is the first chunk: width and height, big-endian, at 16 and 20.
        Format::Png => {
            let width = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
            let height = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
            Some((width, height))
        }
        // The logical screen size, little-endian, at 6 and 8.
        Format::Gif => Some((le16(bytes, 6)?, le16(bytes, 8)?)),
        Format::Jpeg => jpeg_dimensions(bytes),
        Format::WebP => match bytes.get(12..16)? {
            b"VP8 " => Some((le16(bytes, 26)? & 0x3FFF, le16(bytes, 28)? & 0x3FFF)),
            b"VP8L" => {
                let bits = u32::from_le_bytes(bytes.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            b"VP8X" => Some((le24(bytes, 24)? + 1, le24(bytes, 27)? + 1)),
            _ => None,
        },
    }
}

/// Walks a JPEG's segments to the first start-of-frame marker, which holds its size.
fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    // At most as many segments as the file has room for: a damaged length cannot loop.
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        // Fill bytes and markers without a length.
        if marker == 0xFF {
            at += 1;
            continue;
        }
        if matches!(marker, 0xD8 | 0x01 | 0xD0..=0xD7) {
            at += 2;
            continue;
        }
        let length = be16(bytes, at + 2)? as usize;
        let start_of_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if start_of_frame {
            let height = be16(bytes, at + 5)?;
            let width = be16(bytes, at + 7)?;
            return Some((width, height));
        }
        if length < 2 {
            return None;
        }
        at += 2 + length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest PNG header with a given size (enough for `measure`).
    pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn each_format_is_known_by_its_content_and_measured() {
        let image = measure("images/Chart 1.png", &png(560, 280)).unwrap();
        assert_eq!(
            (image.format, image.width, image.height),
            (Format::Png, 560, 280)
        );
        assert!(image.published.starts_with("chart-1-") && image.published.ends_with(".png"));
        assert!(matches_published(&image.published, &png(560, 280)));
        assert!(!matches_published(&image.published, &png(561, 280)));

        let gif = b"GIF89a\x40\x01\xf0\x00\x00\x00\x00".to_vec();
        assert_eq!(measure("a.gif", &gif).unwrap().width, 320);

        // SOI, an APP0 segment, then SOF0 with height 200 and width 300.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0xC8, 0x01, 0x2C, 0x03]);
        let image = measure("a.jpg", &jpeg).unwrap();
        assert_eq!((image.width, image.height), (300, 200));

        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend_from_slice(&[0; 8]);
        webp.extend_from_slice(&[0x3F, 0x02, 0x00, 0x17, 0x01, 0x00]);
        let image = measure("a.webp", &webp).unwrap();
        assert_eq!((image.width, image.height), (576, 280));

        assert_eq!(
            measure("fake.png", b"<svg onload=alert(1)>"),
            Err(ImageError::NotAnImage("fake.png".into()))
        );
        assert_eq!(
            measure("cut.png", &png(560, 280)[..18]),
            Err(ImageError::NoSize("cut.png".into()))
        );
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert!(check_relative("images/a.png").is_ok());
        for bad in [
            "../a.png",
            "/etc/passwd",
            "images/../../a.png",
            "",
            "a\\b.png",
            ".",
            "./",
        ] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
        assert!(is_local("images/a.png"));
        assert!(!is_local("https://a.example/a.png"));
        assert!(!is_local("javascript:alert(1)"));
    }

    #[test]
    fn a_damaged_jpeg_never_loops() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF, 0xE0, 0x00, 0x00];
        assert!(jpeg_dimensions(&jpeg).is_none());
    }
}
