//! Owner-name arithmetic the providers share: absolute, compared without case, its
//! ancestors, relative to a zone.

/// The name made absolute (final dot) and lower case.
pub fn absolute(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

/// Whether two names are equal, case and final dot ignored.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// `name` and its ancestors, longest first, absolute, without the root: `a.b.c.`, `b.c.`, `c.`.
pub fn ancestors(name: &str) -> Vec<String> {
    let name = absolute(name);
    let mut out = Vec::new();
    let mut rest = name.as_str();
    while !rest.is_empty() && rest != "." {
        out.push(rest.to_owned());
        rest = match rest.split_once('.') {
            Some((_, tail)) => tail,
            None => "",
        };
    }
    out
}

/// `name` relative to `zone` (`_25._tcp.mail` for `_25._tcp.mail.example.com.` in
/// `example.com.`); empty for the apex; `None` when the name is not in the zone.
pub fn relative_to(name: &str, zone: &str) -> Option<String> {
    let name = absolute(name);
    let zone = absolute(zone);
    if name == zone {
        return Some(String::new());
    }
    name.strip_suffix(&format!(".{zone}")).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            ancestors("a.b.c"),
            vec!["a.b.c.".to_string(), "b.c.".into(), "c.".into()]
        );
        assert_eq!(
            relative_to("_25._tcp.mail.example.com.", "Example.com"),
            Some("_25._tcp.mail".into())
        );
        assert_eq!(
            relative_to("example.com", "example.com."),
            Some(String::new())
        );
        assert_eq!(relative_to("example.org.", "example.com."), None);
        assert_eq!(relative_to("badexample.com.", "example.com."), None);
    }
}
