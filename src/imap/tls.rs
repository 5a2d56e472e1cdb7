//! TLS for IMAP: rustls (ring) with the platform's certificate verifier, or,
//! when the user pinned one, exactly one end-entity certificate.
//!
//! A server whose certificate does not verify is refused, and the refusal
//! names the certificate's SHA-256 fingerprint so the user can compare it
//! (with the server's admin, or `openssl s_client`) and pin it. A pin
//! replaces chain validation entirely (a self-signed or private-CA server):
//! only a certificate with that exact fingerprint is accepted, whatever its
//! names or dates, and the handshake signatures are still checked against it.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// Parses 64 hex digits, with or without `:` separators and in either
    /// case (the forms `openssl` and browsers print), optionally prefixed
    /// `sha256:`.
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let text = text.trim();
        let text = text.strip_prefix("sha256:").or_else(|| text.strip_prefix("SHA256:")).unwrap_or(text);
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let pair = std::str::from_utf8(pair).ok()?;
            bytes[i] = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Fingerprint(bytes))
    }
}

impl std::fmt::Display for Fingerprint {
    /// Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256`
    /// prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// Verifies server certificates for one connection and remembers the
/// fingerprint of the last one presented, for the error message.
#[derive(Debug)]
pub(crate) struct Verifier {
    platform: Option<rustls_platform_verifier::Verifier>,
    pinned: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
    presented: Mutex<Option<Fingerprint>>,
}

impl Verifier {
    /// A verifier that accepts only `pinned`, or (without a pin) what the
    /// platform trusts.
    pub(crate) fn new(pinned: Option<Fingerprint>) -> Result<Verifier, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let platform = match pinned {
            Some(_) => None,
            None => Some(rustls_platform_verifier::Verifier::new(provider.clone())?),
        };
        Ok(Verifier { platform, pinned, provider, presented: Mutex::new(None) })
    }

    /// The fingerprint of the certificate the server presented, if any.
    pub(crate) fn presented(&self) -> Option<Fingerprint> {
        *self.presented.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client config using this verifier.
    pub(crate) fn client_config(self: Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = self.provider.clone();
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self)
            .with_no_client_auth())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        *self.presented.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
        match (&self.pinned, &self.platform) {
            (Some(pinned), _) if *pinned == presented => Ok(ServerCertVerified::assertion()),
            (Some(pinned), _) => Err(rustls::Error::General(format!(
                "the server's certificate (SHA-256 {presented}) is not the pinned one ({pinned})"
            ))),
            (None, Some(platform)) => platform.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            (None, None) => Err(rustls::Error::General("no certificate verifier".to_owned())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings_and_print_like_openssl() {
        let fp = Fingerprint::of(b"certificate");
        let printed = fp.to_string();
        assert_eq!(printed.len(), 32 * 3 - 1);
        assert_eq!(Fingerprint::parse(&printed), Some(fp));
        assert_eq!(Fingerprint::parse(&printed.replace(':', "").to_lowercase()), Some(fp));
        assert_eq!(Fingerprint::parse(&format!("sha256:{printed}")), Some(fp));
        assert_eq!(Fingerprint::parse("AB:CD"), None);
        assert_eq!(Fingerprint::parse(&"zz".repeat(32)), None);
    }
}
