//! Kernel configuration files: parsing fragments and `.config`, and the check
//! that every option a fragment asks for survived Kconfig.

use std::collections::BTreeMap;

/// One option's value: `Some("y")`, `Some("\"text\"")`, ..., or `None` for
/// "is not set".
pub type Value = Option<String>;

/// Parses `CONFIG_X=value` and `# CONFIG_X is not set` lines, in order of
/// appearance (a later line for the same option wins, as in merge_config.sh).
pub fn parse(text: &str) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set")
                && name.starts_with("CONFIG_")
                && !name.contains(' ')
            {
                map.insert(name.to_string(), None);
            }
        } else if line.starts_with("CONFIG_")
            && let Some((name, value)) = line.split_once('=')
        {
            map.insert(name.to_string(), Some(value.to_string()));
        }
    }
    map
}

/// An option the fragment asked for and the final `.config` does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Option name, `CONFIG_...`.
    pub name: String,
    /// What the fragment asked for.
    pub wanted: Value,
    /// What Kconfig produced (`None`: not set or absent).
    pub got: Value,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Value| match v {
            Some(v) => v.clone(),
            None => "n (not set)".to_string(),
        };
        let what = if self.got.is_none() {
            "dropped"
        } else {
            "changed"
        };
        write!(
            f,
            "{}: wanted {}, got {} ({what} by Kconfig)",
            self.name,
            show(&self.wanted),
            show(&self.got)
        )
    }
}

/// Every option of `fragment` whose value differs in `config`, with
/// `CONFIG_RUST` first, then by name. "is not set" is satisfied by an option
/// that is absent or not set; `=n` counts as "not set".
pub fn compare(
    fragment: &BTreeMap<String, Value>,
    config: &BTreeMap<String, Value>,
) -> Vec<Mismatch> {
    let norm = |v: &Value| -> Value {
        match v.as_deref() {
            None | Some("n") => None,
            Some(s) => Some(s.to_string()),
        }
    };
    let mut out: Vec<Mismatch> = fragment
        .iter()
        .filter_map(|(name, wanted)| {
            let got = config.get(name).and_then(&norm);
            let wanted = norm(wanted);
            (wanted != got).then(|| Mismatch {
                name: name.clone(),
                wanted,
                got,
            })
        })
        .collect();
    out.sort_by_key(|m| (m.name != "CONFIG_RUST", m.name.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_unset_and_strings() {
        let m =
            parse("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n# comment\nCONFIG_A=m\n");
        assert_eq!(m["CONFIG_A"], Some("m".into()));
        assert_eq!(m["CONFIG_B"], None);
        assert_eq!(m["CONFIG_C"], Some("\"x y\"".into()));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn dropped_rust_is_listed_first() {
        let frag = parse("CONFIG_ACPI=y\nCONFIG_RUST=y\nCONFIG_PCI=y\n# CONFIG_VT is not set\n");
        let conf = parse("CONFIG_PCI=y\n# CONFIG_RUST is not set\nCONFIG_VT=y\n");
        let m = compare(&frag, &conf);
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_RUST", "CONFIG_ACPI", "CONFIG_VT"]);
        assert!(m[0].to_string().contains("dropped"), "{}", m[0]);
        assert!(m[2].to_string().contains("changed"), "{}", m[2]);
    }

    #[test]
    fn not_set_is_satisfied_by_absent_or_n() {
        let frag = parse("# CONFIG_X is not set\n# CONFIG_Y is not set\nCONFIG_Z=y\n");
        let conf = parse("CONFIG_Y=n\nCONFIG_Z=y\n");
        assert!(compare(&frag, &conf).is_empty());
    }

    #[test]
    fn the_repository_fragment_asks_for_rust_and_no_ps2_stack() {
        let frag = parse(include_str!("../../../kernel/lab.config"));
        assert_eq!(frag["CONFIG_RUST"], Some("y".into()));
        for off in [
            "CONFIG_SERIO_I8042",
            "CONFIG_INPUT",
            "CONFIG_VT",
            "CONFIG_KEYBOARD_ATKBD",
        ] {
            assert_eq!(frag[off], None, "{off} must be off");
        }
    }
}
