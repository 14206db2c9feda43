//! dane-roll: safe DANE TLSA rollovers and monitoring for mail servers.
//!
//! The binary is a tiny front over [`run`]. Each concept lives in its own module:
//! - [`tlsa`]: the TLSA record (parse, display, compute, lints);
//! - [`pki`]: loading certificates, chains and keys from PEM or DER;
//! - [`config`]: the TOML configuration and its validation;
//! - [`dns`]: validated lookups and the authoritative view (every nameserver's answer);
//! - [`probe`]: the live DANE probe (STARTTLS dialogues, OpenSSL's DANE verification);
//! - [`monitor`]: the monitoring checklist (`check`), its reports and the exporter (`serve`);
//! - [`publish`]: from the configuration to the provider a service's records go through;
//! - [`rollover`]: the plan, the phases and the pure engine of a key rollover, and its driver;
//! - [`install`]: atomic key+chain install and the reload command;
//! - [`hooks`]: certbot, acme.sh and dehydrated hook environments turned into deploy requests;
//!   [`rotate`]: making certbot renew with the published next key;
//! - [`notify`]: alerts (webhook, email, Telegram) and when to send them;
//! - [`store`]: the SQLite state store; [`lock`]: one process per service;
//! - [`cli`]: the command-line types; [`cmd`]: one module per command (and how progress is
//!   shown: a bar or lines);
//! - [`exit`]: the exit codes and how errors reach the user; [`output`]: the printing edge
//!   (control characters escaped, a closed output never a panic).
#![deny(unsafe_code)]
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
// The commands are the printing edge: they print their results; the library below them logs.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cmd;
pub mod config;
mod der;
pub mod dns;
pub mod exit;
pub mod fsafe;
pub mod hooks;
pub mod init;
pub mod install;
pub mod lock;
pub mod monitor;
pub mod notify;
pub mod output;
pub mod pki;
pub mod preflight;
pub mod probe;
pub mod publish;
mod rfc3339;
pub mod rollover;
pub mod rotate;
pub mod store;
pub mod tlsa;
pub mod tlsrpt;

use std::process::ExitCode;

/// Parse the command line, run the command, and turn its outcome into an exit code.
///
/// Errors are printed once, on standard error, with their causes; nothing panics on bad input.
pub fn run() -> ExitCode {
    use clap::Parser;
    output::guard(|| {
        let mut cli = cli::Cli::parse();
        if let Err(err) = cli.settle() {
            err.exit();
        }
        cmd::log::init(cli.verbose, cli.quiet);
        match cmd::dispatch(&cli) {
            Ok(status) => status.into(),
            Err(err) => exit::report(&err),
        }
    })
}
