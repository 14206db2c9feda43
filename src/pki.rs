//! Loading certificates, chains and keys from PEM or DER, detected by content.
