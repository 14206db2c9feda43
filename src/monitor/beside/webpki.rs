//! The Web PKI as MTA-STS senders apply it (RFC 8461 §4.2): a served chain must lead to a
//! trusted root, be within its dates, and name the MX host. OpenSSL (already the prober's TLS
//! library) does the verification against a [`Trust`]: the system's CA store, or a CA bundle
//! named with `--webpki-ca-file` (a test CA, an internal one).

use std::path::{Path, PathBuf};

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};

/// The roots MTA-STS checks trust: the policy fetch over HTTPS and the MX certificates.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The CA bundle's file and its certificates; `None`: the system's store.
    bundle: Option<(PathBuf, Vec<u8>, Vec<X509>)>,
}

impl Trust {
    /// The system's CA store (OpenSSL's default paths).
    pub fn system() -> Trust {
        Trust { bundle: None }
    }

    /// Only the CA certificates in the PEM file `path`.
    pub fn from_file(path: &Path) -> Result<Trust, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA bundle {}: {e}", path.display()))?;
        let certs = X509::stack_from_pem(&pem).unwrap_or_default();
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificate: give a CA bundle (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(Trust {
            bundle: Some((path.to_path_buf(), pem, certs)),
        })
    }

    /// The bundle's PEM, when one was given (for the HTTPS client).
    pub fn pem(&self) -> Option<&[u8]> {
        self.bundle.as_ref().map(|(_, pem, _)| pem.as_slice())
    }

    /// Whether `chain_der` (the server's certificate first) is valid for `host` under the Web
    /// PKI; why not, in words.
    pub fn verify(&self, host: &str, chain_der: &[Vec<u8>]) -> Result<(), String> {
        let ossl = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
        let mut certs = chain_der.iter().map(|der| X509::from_der(der));
        let leaf = certs
            .next()
            .ok_or("no certificate was served")?
            .map_err(ossl)?;
        let mut chain = Stack::new().map_err(ossl)?;
        for cert in certs {
            chain.push(cert.map_err(ossl)?).map_err(ossl)?;
        }
        let mut store = X509StoreBuilder::new().map_err(ossl)?;
        match &self.bundle {
            Some((_, _, roots)) => {
                for root in roots {
                    store.add_cert(root.clone()).map_err(ossl)?;
                }
            }
            None => store.set_default_paths().map_err(ossl)?,
        }
        let mut param = X509VerifyParam::new().map_err(ossl)?;
        param.set_host(host.trim_end_matches('.')).map_err(ossl)?;
        store.set_param(&param).map_err(ossl)?;
        let store = store.build();
        let mut ctx = X509StoreContext::new().map_err(ossl)?;
        let outcome = ctx
            .init(&store, &leaf, &chain, |c| {
                Ok(if c.verify_cert()? {
                    Ok(())
                } else {
                    Err(c.error())
                })
            })
            .map_err(ossl)?;
        outcome.map_err(|e| e.error_string().to_string())
    }
}
