//! PEM encoding and decoding ([RFC 7468](https://www.rfc-editor.org/rfc/rfc7468)).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Encodes `der` as PEM with `label` (for example `CERTIFICATE`).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so any chunk boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes every PEM block in `text`, returning `(label, der)` pairs in order.
///
/// Text outside blocks is ignored, as RFC 7468 permits.
pub fn decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                continue; // RFC 1421 headers: not used by the types we accept
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(format!("PEM block {label:?} is not terminated"));
        }
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| format!("PEM block {label:?} is not valid base64"))?;
        out.push((label.to_owned(), der));
    }
    Ok(out)
}

/// Decodes the first PEM block labelled `label`.
pub fn decode_one(text: &str, label: &str) -> Result<Vec<u8>, String> {
    decode_all(text)?
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, der)| der)
        .ok_or_else(|| format!("no PEM block labelled {label:?} found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_wraps_at_64() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_one(&pem, "CERTIFICATE").expect("decodes"), der);
        let two = format!("junk\n{pem}{}", encode("OTHER", b"x"));
        let all = decode_all(&two).expect("decodes");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].0, "OTHER");
    }

    #[test]
    fn rejects_broken_blocks() {
        assert!(decode_all("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(decode_all("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
        assert!(decode_one("nothing here", "X").is_err());
    }
}
