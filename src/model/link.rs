//! Links that may appear in an email: absolute, http(s), with a host and no credentials.

use std::fmt;

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("`{0}` is not an absolute URL; write it in full, starting with https://")]
    NotAbsolute(String),
    #[error("`{0}` must be an http(s) URL, not `{1}:`")]
    Scheme(String, String),
    #[error(
        "`{0}` must be an https URL (http:// only for localhost or 127.0.0.1, to try things out)"
    )]
    NotHttps(String),
    #[error("`{0}` must not carry a user name or password")]
    Credentials(String),
    #[error("`{0}` must not contain spaces or control characters")]
    Whitespace(String),
    #[error(
        "the site's address is {0} characters long; every email carries it in a header, so keep it under {SITE_URL_MAX}"
    )]
    TooLong(usize),
}

/// The longest `site_url`: it goes into every message's `List-Unsubscribe` header with a
/// token, and header lines must stay well within 998 octets.
pub const SITE_URL_MAX: usize = 200;

/// An absolute http or https URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebUrl(Url);

impl WebUrl {
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let text = text.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(LinkError::Whitespace(text.into()));
        }
        let url = Url::parse(text).map_err(|_| LinkError::NotAbsolute(text.into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LinkError::Scheme(text.into(), url.scheme().into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(LinkError::NotAbsolute(text.into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(LinkError::Credentials(text.into()));
        }
        Ok(WebUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl fmt::Display for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The newsletter's public https base: the web version and unsubscribe links hang off it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrl(WebUrl);

impl SiteUrl {
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let url = WebUrl::parse(text)?;
        if url.as_str().len() > SITE_URL_MAX {
            return Err(LinkError::TooLong(url.as_str().len()));
        }
        let site = SiteUrl(url);
        if !site.0.is_https() && !site.is_this_machine() {
            return Err(LinkError::NotHttps(text.trim().into()));
        }
        Ok(site)
    }

    /// `http://localhost:8080` or `http://127.0.0.1:8080`: allowed, for clicking the
    /// unsubscribe and sign-up pages through while trying letterpress out, but its links
    /// work on this machine only.
    pub fn is_this_machine(&self) -> bool {
        matches!(self.0.host(), "localhost" | "127.0.0.1" | "[::1]")
    }

    /// `path` joined under the site, whatever the trailing slashes.
    pub fn join(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.0.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    pub fn host(&self) -> &str {
        self.0.host()
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_links_with_a_host_are_accepted() {
        assert!(WebUrl::parse("https://arxiv.org/abs/2108.07258").is_ok());
        assert!(WebUrl::parse("http://example.com").is_ok());
        assert_eq!(
            WebUrl::parse("javascript:alert(1)"),
            Err(LinkError::Scheme(
                "javascript:alert(1)".into(),
                "javascript".into()
            ))
        );
        assert_eq!(
            WebUrl::parse("example.com/x"),
            Err(LinkError::NotAbsolute("example.com/x".into()))
        );
        assert_eq!(
            WebUrl::parse("https://u:p@example.com/"),
            Err(LinkError::Credentials("https://u:p@example.com/".into()))
        );
        assert!(WebUrl::parse("https://exa mple.com/").is_err());
    }

    #[test]
    fn the_site_url_must_be_https_and_joins_cleanly() {
        assert!(SiteUrl::parse("http://weekly.example.com").is_err());
        let site = SiteUrl::parse("https://weekly.example.com/").unwrap();
        assert_eq!(
            site.join("/unsubscribe/abc"),
            "https://weekly.example.com/unsubscribe/abc"
        );
    }
}
