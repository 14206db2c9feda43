//! The OpenSSL DANE seam: the `SSL_dane_*` functions of libssl, declared here because openssl-sys
//! does not bind them, and wrapped as safe functions over the openssl crate's types.
//!
//! This is the only module of the crate with `unsafe` code. Every function here corresponds to
//! one libssl function (see the man page `SSL_CTX_dane_enable(3)`); the verdict of a probe is
//! OpenSSL's own DANE verification, the code Postfix uses, not a re-implementation.
#![allow(unsafe_code)] // the OpenSSL DANE seam: openssl-sys has no SSL_dane_* bindings

use std::ffi::{CString, c_char, c_int, c_uchar, c_ulong};
use std::ptr;

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::{X509, X509Ref};
use openssl_sys::{EVP_PKEY, SSL, SSL_CTX, X509 as RawX509};
use thiserror::Error;

use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

/// `DANE_FLAG_NO_DANE_EE_NAMECHECKS` from `<openssl/x509_vfy.h>`: no name checks for DANE-EE(3)
/// matches, as RFC 7672 §3.1.1 requires for SMTP.
const DANE_FLAG_NO_DANE_EE_NAMECHECKS: c_ulong = 1;

// The prototypes are those of <openssl/ssl.h> in OpenSSL 1.1.0 and later.
unsafe extern "C" {
    fn SSL_CTX_dane_enable(ctx: *mut SSL_CTX) -> c_int;
    fn SSL_dane_enable(s: *mut SSL, basedomain: *const c_char) -> c_int;
    fn SSL_dane_set_flags(s: *mut SSL, flags: c_ulong) -> c_ulong;
    fn SSL_dane_tlsa_add(
        s: *mut SSL,
        usage: u8,
        selector: u8,
        mtype: u8,
        data: *const c_uchar,
        dlen: usize,
    ) -> c_int;
    fn SSL_get0_dane_authority(
        s: *mut SSL,
        mcert: *mut *mut RawX509,
        mspki: *mut *mut EVP_PKEY,
    ) -> c_int;
    fn SSL_get0_dane_tlsa(
        s: *mut SSL,
        usage: *mut u8,
        selector: *mut u8,
        mtype: *mut u8,
        data: *mut *const c_uchar,
        dlen: *mut usize,
    ) -> c_int;
}

/// Why DANE could not be set up on a connection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DaneError {
    /// The base domain holds a NUL byte (host names are checked before; this is a guard).
    #[error("the TLSA base domain contains a NUL byte")]
    NulInName,
    /// OpenSSL refused (out of memory, DANE not enabled on the context).
    #[error("OpenSSL could not enable DANE: {0}")]
    OpenSsl(#[from] ErrorStack),
}

/// Enable DANE on a context, once, before any connection is made from it.
///
/// Corresponds to `SSL_CTX_dane_enable`.
pub fn enable_context(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    // SAFETY: `as_ptr` is a valid SSL_CTX owned by the builder for the duration of the call.
    let rc = unsafe { SSL_CTX_dane_enable(ctx.as_ptr()) };
    if rc <= 0 {
        return Err(ErrorStack::get());
    }
    Ok(())
}

/// Enable DANE on one connection, before its handshake. `basedomain` is the TLSA base domain
/// (the MX host name): the reference identifier for the name checks of DANE-TA(2) matches.
///
/// It does not replace SNI: set the server name with `SslRef::set_hostname` first.
///
/// Corresponds to `SSL_dane_enable`.
pub fn enable(ssl: &mut SslRef, basedomain: &str) -> Result<(), DaneError> {
    let name = CString::new(basedomain).map_err(|_| DaneError::NulInName)?;
    // SAFETY: `ssl` is a live SSL; `name` is NUL-terminated and outlives the call (OpenSSL copies it).
    let rc = unsafe { SSL_dane_enable(ssl.as_ptr(), name.as_ptr()) };
    if rc <= 0 {
        return Err(DaneError::OpenSsl(ErrorStack::get()));
    }
    Ok(())
}

/// Turn off name checks for DANE-EE(3) matches on this connection: RFC 7672 §3.1.1 says a
/// DANE-EE match authenticates the server whatever names (and dates) its certificate holds.
///
/// Corresponds to `SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS)`.
pub fn no_dane_ee_namechecks(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a live SSL on which DANE may or may not be enabled; the call only sets bits.
    unsafe { SSL_dane_set_flags(ssl.as_ptr(), DANE_FLAG_NO_DANE_EE_NAMECHECKS) };
}

/// What OpenSSL made of one TLSA record given to [`add_tlsa`].
#[derive(Debug)]
pub enum Added {
    /// The record is usable and takes part in verification.
    Usable,
    /// OpenSSL declined the record (e.g. matching type 0 data that is not a certificate or a
    /// key); the errors say why. It takes no part in verification.
    Unusable(ErrorStack),
}

/// Add one TLSA record to a connection on which DANE is enabled.
///
/// `SSL_dane_tlsa_add` has three outcomes, not two: below 0 an internal error (returned as
/// `Err`), 0 a record OpenSSL cannot use ([`Added::Unusable`]), above 0 a usable record.
///
/// Corresponds to `SSL_dane_tlsa_add`.
pub fn add_tlsa(
    ssl: &mut SslRef,
    usage: Usage,
    selector: Selector,
    matching: Matching,
    data: &[u8],
) -> Result<Added, ErrorStack> {
    // SAFETY: `ssl` is live; `data` points to `data.len()` readable bytes, which OpenSSL copies.
    let rc = unsafe {
        SSL_dane_tlsa_add(
            ssl.as_ptr(),
            u8::from(usage),
            u8::from(selector),
            u8::from(matching),
            data.as_ptr(),
            data.len(),
        )
    };
    match rc {
        rc if rc < 0 => Err(ErrorStack::get()),
        0 => Ok(Added::Unusable(ErrorStack::get())),
        _ => Ok(Added::Usable),
    }
}

/// Where DANE verification found its match, after the handshake.
#[derive(Debug)]
pub struct Authority {
    /// The depth in the chain of the matched certificate: 0 the server's own, 1 its issuer…
    pub depth: u32,
    /// The matched certificate, when the match was a certificate of the chain.
    pub certificate: Option<X509>,
    /// Whether the match was a bare public key (a DANE-TA(2) SPKI record whose CA certificate
    /// was not sent): then there is no certificate.
    pub by_public_key: bool,
}

/// The depth and certificate (or key) that DANE verification matched, or `None` when it matched
/// nothing (or DANE was not enabled).
///
/// Corresponds to `SSL_get0_dane_authority`.
pub fn authority(ssl: &SslRef) -> Option<Authority> {
    let mut cert: *mut RawX509 = ptr::null_mut();
    let mut spki: *mut EVP_PKEY = ptr::null_mut();
    // SAFETY: `ssl` is live; both out-pointers point to locals that OpenSSL may fill with
    // borrowed pointers (owned by the SSL) that we do not free.
    let depth = unsafe { SSL_get0_dane_authority(ssl.as_ptr(), &mut cert, &mut spki) };
    let depth = u32::try_from(depth).ok()?;
    let certificate = if cert.is_null() {
        None
    } else {
        // SAFETY: non-null, a valid X509 owned by the SSL; `to_owned` takes its own reference.
        Some(unsafe { X509Ref::from_ptr(cert) }.to_owned())
    };
    Some(Authority {
        depth,
        certificate,
        by_public_key: !spki.is_null(),
    })
}

/// The TLSA record that DANE verification matched and the depth at which it matched, or `None`.
///
/// Corresponds to `SSL_get0_dane_tlsa`.
pub fn matched_tlsa(ssl: &SslRef) -> Option<(u32, TlsaRecord)> {
    let (mut usage, mut selector, mut mtype) = (0u8, 0u8, 0u8);
    let mut data: *const c_uchar = ptr::null();
    let mut len: usize = 0;
    // SAFETY: `ssl` is live; every out-pointer points to a local of the declared type; `data`
    // is borrowed from the SSL and copied below before the SSL can change.
    let depth = unsafe {
        SSL_get0_dane_tlsa(
            ssl.as_ptr(),
            &mut usage,
            &mut selector,
            &mut mtype,
            &mut data,
            &mut len,
        )
    };
    let depth = u32::try_from(depth).ok()?;
    if data.is_null() {
        return None;
    }
    // SAFETY: OpenSSL says `data` points to `len` bytes of the matched record, alive with `ssl`.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    let record = TlsaRecord::new(
        Usage::try_from(usage).ok()?,
        Selector::try_from(selector).ok()?,
        Matching::try_from(mtype).ok()?,
        bytes,
    )
    .ok()?;
    Some((depth, record))
}
