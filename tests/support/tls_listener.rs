//! A loopback TLS listener with a self-signed certificate made at test
//! time: it completes handshakes and closes, enough for a probe's TLS step
//! to meet a certificate no authority vouches for. Stops when dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::task::JoinHandle;

/// The listener; its task is aborted on drop.
pub struct SelfSignedListener {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SelfSignedListener {
    /// Listens on `127.0.0.1:0` with a certificate for `localhost`.
    pub async fn start() -> SelfSignedListener {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("make a self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
            .expect("a server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                // A refused handshake is what the tests expect; its error
                // is the client's to report.
                let _ = acceptor.accept(tcp).await;
            }
        });
        SelfSignedListener { addr, task }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for SelfSignedListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
