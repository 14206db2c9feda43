//! The TOML configuration: its model, its validation, and secrets read from files.
