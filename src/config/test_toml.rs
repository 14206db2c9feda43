//! TOML the unit tests of several modules write into their configurations alike.

/// `[provider.NAME]` as a string literal (for `concat!`): RFC 2136 to `server`, the TSIG key in
/// `$TSIG`, which no test sets (loading does not read it).
macro_rules! rfc2136_provider {
    ($name:literal, $server:literal) => {
        concat!(
            "[provider.",
            $name,
            "]\nkind = \"rfc2136\"\nserver = \"",
            $server,
            "\"\ntsig-env = \"TSIG\"\n"
        )
    };
}

pub(crate) use rfc2136_provider;
