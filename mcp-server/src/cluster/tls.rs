//! Mutual TLS between the hub and its agents (rustls, ring): one CA signs both sides. Agents
//! accept only clients with a certificate from it; the hub accepts only agents whose
//! certificate from it names `--agent-server-name` (it dials pod IPs, which certificates made
//! before the pods cannot name).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the certificate {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the certificate {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading the private key {}", path.display()))
}

fn roots(ca: &Path) -> anyhow::Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .with_context(|| format!("the CA certificate in {} is not usable", ca.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The certificate files of one side.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub ca: std::path::PathBuf,
}

/// The agent's side: serves HTTP/2 only, to clients with a certificate from the CA.
pub fn agent_acceptor(f: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots(&f.ca)?, provider())
        .build()
        .context("building the client-certificate verifier")?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&f.cert)?, key(&f.key)?)
        .context("the agent's certificate and key do not form a usable pair")?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// The hub's side: presents its client certificate, trusts only the CA.
pub fn hub_connector(f: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots(&f.ca)?)
        .with_client_auth_cert(certs(&f.cert)?, key(&f.key)?)
        .context("the hub's certificate and key do not form a usable pair")?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}
