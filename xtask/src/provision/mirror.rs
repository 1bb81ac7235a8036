//! The Debian mirror the pinned `.deb`s come from: the one the host's own
//! apt sources already use (so a host behind its own mirror or proxy gets
//! it for free), or `$LAB_DEBIAN_MIRROR`. The lab names no archive host
//! itself.

use anyhow::{Result, bail};
use std::path::Path;

/// Environment variable that overrides the mirror found in apt's sources.
pub const MIRROR_ENV: &str = "LAB_DEBIAN_MIRROR";

/// One `deb` source of apt's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    signed_by: Option<String>,
}

impl Source {
    /// Whether this is Debian's main archive (not the security archive, not
    /// a third-party repository).
    fn is_debian_archive(&self) -> bool {
        let signed_by_debian = self
            .signed_by
            .as_deref()
            .is_some_and(|k| k.contains("debian-archive-keyring"));
        let debian_path = self.uri.trim_end_matches('/').ends_with("/debian");
        let security =
            self.uri.contains("security") || self.suites.iter().any(|s| s.ends_with("-security"));
        (signed_by_debian || debian_path) && !security
    }
}

/// The mirror: `$LAB_DEBIAN_MIRROR`, else the first Debian archive in the
/// apt sources under `etc_apt` (normally `/etc/apt`).
pub fn debian_mirror(etc_apt: &Path) -> Result<String> {
    if let Some(m) = std::env::var_os(MIRROR_ENV).filter(|m| !m.is_empty()) {
        return Ok(m.to_string_lossy().trim_end_matches('/').to_owned());
    }
    let mut files = vec![etc_apt.join("sources.list")];
    if let Ok(dir) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut parts: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        parts.sort();
        files.extend(parts);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let sources = match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822(&text),
            Some("list") => parse_one_line(&text),
            _ => continue,
        };
        if let Some(s) = sources.into_iter().find(Source::is_debian_archive) {
            return Ok(s.uri.trim_end_matches('/').to_owned());
        }
    }
    bail!(
        "no Debian archive mirror in the apt sources under {} (an Ubuntu host has none): \
         set {MIRROR_ENV} to the URL of a Debian mirror",
        etc_apt.display()
    )
}

/// Sources of a one-line-style file (`deb [options] uri suite comp...`).
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let (options, rest) = match rest.trim_start().strip_prefix('[') {
            Some(r) => r.split_once(']').unwrap_or((r, "")),
            None => ("", rest),
        };
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        let signed_by = options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("signed-by=").map(str::to_owned));
        out.push(Source {
            uri: uri.to_owned(),
            suites: vec![suite.to_owned()],
            signed_by,
        });
    }
    out
}

/// Sources of a deb822-style `.sources` file (stanzas of `Key: value`).
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
        };
        let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        let is_deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        if !enabled || !is_deb {
            continue;
        }
        let suites: Vec<String> = suites.split_whitespace().map(str::to_owned).collect();
        for uri in uris.split_whitespace() {
            out.push(Source {
                uri: uri.to_owned(),
                suites: suites.clone(),
                signed_by: field("Signed-By"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Placeholder host names: the tests need URIs, not real archives.
    const DEB822: &str = "Types: deb\n\
        # a comment: snapshot of the archive\n\
        URIs: http://mirror.example/debian\n\
        Suites: bookworm bookworm-updates\n\
        Components: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
        \n\
        Types: deb\n\
        URIs: http://mirror.example/debian-security\n\
        Suites: bookworm-security\n\
        Components: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

    #[test]
    fn deb822_sources_give_the_main_archive_not_security() {
        let s = parse_deb822(DEB822);
        assert_eq!(s.len(), 2);
        let archive: Vec<_> = s.iter().filter(|s| s.is_debian_archive()).collect();
        assert_eq!(archive.len(), 1);
        assert_eq!(archive[0].uri, "http://mirror.example/debian");
    }

    #[test]
    fn one_line_sources_with_options_and_third_party_repositories() {
        let text = "# deb http://old.example/debian bookworm main\n\
            deb https://vendor.example/apt cloud-sdk main\n\
            deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://proxy.example/mirror bookworm main\n";
        let s = parse_one_line(text);
        assert_eq!(s.len(), 2);
        assert!(!s[0].is_debian_archive());
        assert!(s[1].is_debian_archive());
        assert_eq!(s[1].uri, "http://proxy.example/mirror");
    }

    #[test]
    fn the_mirror_is_found_in_a_sources_directory_or_the_error_says_what_to_set() {
        let dir = tempfile::tempdir().unwrap();
        let err = debian_mirror(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MIRROR_ENV), "{err}");
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(dir.path().join("sources.list.d/debian.sources"), DEB822).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/x.list.disabled"),
            "deb http://other.example/debian bookworm main\n",
        )
        .unwrap();
        if std::env::var_os(MIRROR_ENV).is_none() {
            assert_eq!(
                debian_mirror(dir.path()).unwrap(),
                "http://mirror.example/debian"
            );
        }
    }
}
