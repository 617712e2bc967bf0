//! TLS on the server's own listener (`--tls-cert`, `--tls-key`): the certificate chain and key
//! are read from PEM files at start and again on each [`Tls::reload`] (SIGHUP). A reload changes
//! what new handshakes present; connections already open keep theirs. A reload that fails keeps
//! the certificate in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key could not be used. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use the certificate {}: {reason}", path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("cannot use the private key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("the private key {} does not go with the certificate {}: {reason}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS set-up failed: {0}")]
    Setup(String),
}

type Current = Arc<RwLock<Arc<CertifiedKey>>>;

/// The served certificate, replaceable while the server runs.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Current,
    acceptor: TlsAcceptor,
}

// Hand-written: the key material is not for logs.
impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Hands each handshake the certificate current at that moment.
struct Resolver(Current);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read(&self.0))
    }
}

fn read(current: &Current) -> Arc<CertifiedKey> {
    // A poisoned lock still holds a whole certificate: the writer only swaps an Arc.
    current
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

impl Tls {
    /// Reads the PEM certificate chain and private key; an error says which file is wrong.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Tls>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = load_pair(&provider, cert_path, key_path)?;
        let current: Current = Arc::new(RwLock::new(Arc::new(key)));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(current.clone())));
        // HTTP/1.1 only: the server speaks nothing else (WebSocket upgrades included).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// Reads both files again and, if they make a valid pair, serves them to every new
    /// handshake. On error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_pair(&self.provider, &self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// The end-entity certificate served now (DER).
    pub fn certificate(&self) -> CertificateDer<'static> {
        read(&self.current).cert[0].clone()
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

fn load_pair(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert_path.to_path_buf(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: key_path.to_path_buf(),
        reason,
    };
    let chain = std::fs::read(cert_path).map_err(|e| cert_error(e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not PEM ({e})")))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in it".into()));
    }
    let key = std::fs::read(key_path).map_err(|e| key_error(e.to_string()))?;
    // The reason is the parser's, which never quotes the key.
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| key_error(format!("{e}")))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(e.to_string()))?;
    let pair = CertifiedKey::new(chain, key);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(e) => Err(TlsError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Reloads `tls` on every SIGHUP from now until the process ends, logging each outcome; a
/// failed reload keeps the certificate in use and says why. The handler is in place when this
/// returns (a SIGHUP before it would end the process).
pub fn reload_on_hangup(tls: Arc<Tls>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!(cert = %tls.cert_path.display(), "TLS certificate reloaded")
                }
                Err(err) => {
                    tracing::warn!("TLS certificate not reloaded, the previous one stays: {err}")
                }
            }
        }
    });
    Ok(())
}
