//! acme.sh mirrored for the tests of its hook line (acme.sh is not packaged): its
//! `_installcert` and `_read_conf` (acme.sh 3.x) in shell, and what its `issue` leaves in a
//! certificate's domain directory.

#![allow(dead_code)] // each test file uses its part

use std::path::Path;

use dane_roll::rollover::KeyHash;
use dane_roll_lab::pki::{self, Key, Leaf, MX_HOST};

/// acme.sh's `_read_conf FILE Le_ReloadCmd` (acme.sh 3.x), as it reads the reload command back
/// at every renewal: the line `eval`ed, base64 between its markers decoded (`_dbase64`).
pub const READ_CONF: &str = r#"_r_c_f=$1 _sdkey=Le_ReloadCmd
_sdv="$(
  eval "$(grep "^$_sdkey *=" "$_r_c_f")"
  eval "printf \"%s\" \"\$$_sdkey\""
)"
case "$_sdv" in
  __ACME_BASE64__START_*__ACME_BASE64__END_)
    _sdv="$(echo "$_sdv" | sed "s/__ACME_BASE64__START_//" | sed "s/__ACME_BASE64__END_//" | openssl base64 -d -A)" ;;
esac
printf "%s" "$_sdv""#;

/// acme.sh's `_installcert` (acme.sh 3.x), as it runs the reload command after a renewal: the
/// variables are the shell's, exported in a subshell, then `cd` and `eval`. Arguments: the
/// reload command, the domain directory, the main domain.
pub const INSTALLCERT: &str = r#"_reload_cmd=$1 DOMAIN_PATH=$2 _main_domain=$3
CERT_PATH="$DOMAIN_PATH/$_main_domain.cer"
CERT_KEY_PATH="$DOMAIN_PATH/$_main_domain.key"
CA_CERT_PATH="$DOMAIN_PATH/ca.cer"
CERT_FULLCHAIN_PATH="$DOMAIN_PATH/fullchain.cer"
Le_ForceNewDomainKey=1
Le_Next_Domain_Key="$CERT_KEY_PATH.next"
if (
  export CERT_PATH
  export CERT_KEY_PATH
  export CA_CERT_PATH
  export CERT_FULLCHAIN_PATH
  export Le_Domain="$_main_domain"
  export Le_ForceNewDomainKey
  export Le_Next_Domain_Key
  cd "$DOMAIN_PATH" && eval "$_reload_cmd"
); then
  echo "Reload successful"
else
  echo "Reload error for: $_main_domain"
  exit 1
fi"#;

/// What acme.sh keeps for a certificate in its domain directory `dir`: key, leaf, CA, full
/// chain, and (with `--always-force-new-domain-key`) the pre-generated `<key>.next`; each 0600.
pub fn write_domain_files(dir: &Path, leaf: &Leaf, next: &Key) {
    let write = |name: &str, data: &[u8]| pki::write_atomic(&dir.join(name), data, 0o600).unwrap();
    write(
        &format!("{MX_HOST}.key"),
        &leaf.key.private_key_to_pem_pkcs8().unwrap(),
    );
    write(&format!("{MX_HOST}.cer"), &leaf.cert.to_pem().unwrap());
    let mut chain = Vec::new();
    for c in &leaf.chain {
        chain.extend(c.to_pem().unwrap());
    }
    write("ca.cer", &chain);
    write("fullchain.cer", &leaf.fullchain_pem().unwrap());
    write(
        &format!("{MX_HOST}.key.next"),
        &next.private_key_to_pem_pkcs8().unwrap(),
    );
}

/// What acme.sh's issue() leaves for a new certificate of `ca` for `key`: its key hash.
pub fn acme_sh_issue(ca: &pki::TestPki, dir: &Path, key: Key, next: &Key) -> KeyHash {
    let leaf = ca
        .leaf_for_key(&[MX_HOST], key, pki::Validity::Days(90))
        .unwrap();
    write_domain_files(dir, &leaf, next);
    KeyHash::of_spki_der(&leaf.key.public_key_to_der().unwrap())
}
