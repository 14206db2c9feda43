//! The TLSA record: parse, display, compute from certificates and keys, lints.
