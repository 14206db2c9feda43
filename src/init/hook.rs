//! The hook line `init` prints for the ACME client it found: how that client hands a renewed
//! certificate to dane-roll (the lines of the README, with this certificate's name and, for a
//! configuration elsewhere than the default, `DANE_ROLL_CONFIG`). The program is named by its
//! path: certbot's and acme.sh's timers run hooks with `PATH=/usr/sbin:/usr/bin:/sbin:/bin`.
//! Printed for an operator who registers it by hand; `init --apply` registers it itself
//! ([`super::register`]).

use std::path::Path;

use super::discover::acme::{AcmeCert, Client};
use crate::cli::DEFAULT_CONFIG;

/// What to run so that the client calls dane-roll (`program`, an absolute path) after each renewal.
pub fn hook_lines(
    acme: Option<&AcmeCert>,
    config: &Path,
    service: &str,
    program: &Path,
) -> Vec<String> {
    let bin = program.display();
    let env = if config == Path::new(DEFAULT_CONFIG) {
        String::new()
    } else {
        format!("env DANE_ROLL_CONFIG={} ", config.display())
    };
    let Some(cert) = acme else {
        return vec![format!(
            "no ACME client found: hand each new certificate over with `{env}{bin} deploy --service {service} --cert FULLCHAIN --key KEY`"
        )];
    };
    match cert.client {
        Client::Certbot => vec![
            format!(
                "certbot reconfigure --cert-name {} --deploy-hook \"{env}{bin} hook certbot\"",
                cert.name
            ),
            "  (certbot before 2.3: install hooks/certbot-deploy-hook.sh as /etc/letsencrypt/renewal-hooks/deploy/dane-roll)".into(),
        ],
        Client::AcmeSh => {
            let ecc = cert
                .dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("_ecc"));
            vec![format!(
                "acme.sh --install-cert -d {}{} --reloadcmd \"{env}{bin} hook acme.sh\"",
                cert.name,
                if ecc { " --ecc" } else { "" }
            )]
        }
        Client::Dehydrated => vec![
            "in dehydrated's config: HOOK=/usr/lib/dane-roll/dane-roll-dehydrated-hook (the package's; else hooks/dane-roll-dehydrated-hook installed in /usr/local/bin) and PRIVATE_KEY_ROLLOVER=\"yes\"".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cert(client: Client, dir: &str) -> AcmeCert {
        AcmeCert {
            client,
            name: "mail.example.com".into(),
            dir: PathBuf::from(dir),
            key: PathBuf::new(),
            fullchain: PathBuf::new(),
            next_key: None,
        }
    }

    #[test]
    fn one_line_per_client() {
        let default = Path::new(DEFAULT_CONFIG);
        let bin = Path::new("/usr/bin/dane-roll");
        let certbot = cert(Client::Certbot, "/etc/letsencrypt/live/mail.example.com");
        assert_eq!(
            hook_lines(Some(&certbot), default, "mx", bin)[0],
            "certbot reconfigure --cert-name mail.example.com --deploy-hook \"/usr/bin/dane-roll hook certbot\""
        );
        let acme = cert(Client::AcmeSh, "/root/.acme.sh/mail.example.com_ecc");
        assert_eq!(
            hook_lines(Some(&acme), Path::new("/etc/x.toml"), "mx", bin)[0],
            "acme.sh --install-cert -d mail.example.com --ecc --reloadcmd \"env DANE_ROLL_CONFIG=/etc/x.toml /usr/bin/dane-roll hook acme.sh\""
        );
        assert!(
            hook_lines(None, default, "mx", bin)[0]
                .contains("/usr/bin/dane-roll deploy --service mx")
        );
    }
}
