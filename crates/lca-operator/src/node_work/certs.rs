//! What the Upgrade reads from certificates: the ingress CA's subject CN (kept by recert,
//! §6.1 step 7) and the earliest expiry of the old stateroot's kubelet certificates, which
//! bounds how long a rollback stays possible (§3.4).

use x509_parser::pem::Pem;

/// The certificates of a PEM bundle.
fn certificates(pem: &str) -> Result<Vec<Pem>, String> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("invalid PEM: {e}"))?;
        if block.label == "CERTIFICATE" {
            out.push(block);
        }
    }
    if out.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(out)
}

/// The subject CN of the first certificate in `pem`.
pub fn subject_cn(pem: &str) -> Result<String, String> {
    let certs = certificates(pem)?;
    let cert = certs[0]
        .parse_x509()
        .map_err(|e| format!("invalid certificate: {e}"))?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "the certificate has no subject CN".into())
}

/// The earliest `NotAfter` of the certificates in `pem`, in seconds since the epoch.
pub fn earliest_not_after(pem: &str) -> Result<i64, String> {
    let mut earliest = None;
    for block in certificates(pem)? {
        let cert = block
            .parse_x509()
            .map_err(|e| format!("invalid certificate: {e}"))?;
        let t = cert.validity().not_after.timestamp();
        earliest = Some(earliest.map_or(t, |e: i64| e.min(t)));
    }
    earliest.ok_or_else(|| "no certificate found".into())
}
