//! Just enough DER to give a certificate a subject with several `O=` attributes.
//!
//! Kubernetes reads a client certificate's organisations as the user's groups, so a node needs
//! `O=system:nodes` next to other groups. rcgen 0.14 keeps one value per attribute type, so the
//! PKI lets rcgen build and sign the certificate, then swaps in a subject encoded here and signs
//! the new `TBSCertificate` again with the same issuer key and algorithm.

use rcgen::SigningKey;

/// What can go wrong while rewriting a certificate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not the DER shape of an X.509 certificate.
    #[error("malformed certificate DER: {0}")]
    Malformed(&'static str),
    /// The issuer key could not sign the rewritten certificate.
    #[error("cannot sign the rewritten certificate")]
    Sign(#[source] rcgen::Error),
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_VERSION: u8 = 0xa0;
/// The DER encoding of the OID 2.5.4.3 (commonName), tag and length included.
const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
/// The DER encoding of the OID 2.5.4.10 (organizationName), tag and length included.
const OID_ORGANIZATION: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];

/// Encodes an X.501 `Name` with one RDN per organisation (in order) followed by the common name,
/// each value a UTF8String: the shape Kubernetes tooling produces for client certificates.
pub(crate) fn encode_name(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let mut rdns = Vec::new();
    for org in organizations {
        rdns.extend(encode_rdn(OID_ORGANIZATION, org));
    }
    rdns.extend(encode_rdn(OID_COMMON_NAME, common_name));
    encode_tlv(TAG_SEQUENCE, &rdns)
}

fn encode_rdn(oid: &[u8], value: &str) -> Vec<u8> {
    let mut attr = oid.to_vec();
    attr.extend(encode_tlv(TAG_UTF8_STRING, value.as_bytes()));
    encode_tlv(TAG_SET, &encode_tlv(TAG_SEQUENCE, &attr))
}

/// Replaces the subject of the DER certificate `cert` with the encoded `subject` and signs the
/// result with `issuer_key`, which must be the key (and algorithm) that signed `cert`.
pub(crate) fn replace_subject(
    cert: &[u8],
    subject: &[u8],
    issuer_key: &impl SigningKey,
) -> Result<Vec<u8>, Error> {
    let (tag, cert_body, rest) = read_tlv(cert)?;
    if tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err(Error::Malformed("certificate is not one SEQUENCE"));
    }
    let (tag, tbs_body, after_tbs) = read_tlv(cert_body)?;
    if tag != TAG_SEQUENCE {
        return Err(Error::Malformed("TBSCertificate is not a SEQUENCE"));
    }
    let (tag, _, after_alg) = read_tlv(after_tbs)?;
    if tag != TAG_SEQUENCE {
        return Err(Error::Malformed("signatureAlgorithm is not a SEQUENCE"));
    }
    let signature_algorithm = &after_tbs[..after_tbs.len() - after_alg.len()];

    // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity,
    // subject, subjectPublicKeyInfo, extensions…
    let mut fields = Vec::new();
    let mut input = tbs_body;
    while !input.is_empty() {
        let (tag, _, rest) = read_tlv(input)?;
        fields.push((tag, &input[..input.len() - rest.len()]));
        input = rest;
    }
    let first = usize::from(fields.first().map(|(tag, _)| *tag) == Some(TAG_VERSION));
    let expected = [
        TAG_INTEGER,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
    ];
    let shape_ok = fields.len() > first + expected.len()
        && fields[first..first + expected.len()]
            .iter()
            .zip(expected)
            .all(|((tag, _), want)| *tag == want);
    if !shape_ok {
        return Err(Error::Malformed("unexpected TBSCertificate fields"));
    }
    let subject_index = first + 4;

    let mut new_tbs_body = Vec::with_capacity(tbs_body.len() + subject.len());
    for (i, (_, raw)) in fields.iter().enumerate() {
        if i == subject_index {
            new_tbs_body.extend_from_slice(subject);
        } else {
            new_tbs_body.extend_from_slice(raw);
        }
    }
    let new_tbs = encode_tlv(TAG_SEQUENCE, &new_tbs_body);
    let signature = issuer_key.sign(&new_tbs).map_err(Error::Sign)?;

    let mut bit_string = Vec::with_capacity(signature.len() + 1);
    bit_string.push(0); // no unused bits
    bit_string.extend(signature);

    let mut body = new_tbs;
    body.extend_from_slice(signature_algorithm);
    body.extend(encode_tlv(TAG_BIT_STRING, &bit_string));
    Ok(encode_tlv(TAG_SEQUENCE, &body))
}

/// Splits one TLV (single-byte tag, definite length) off the front of `input`: returns the tag,
/// the contents and what follows.
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
    let (&tag, rest) = input.split_first().ok_or(Error::Malformed("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(Error::Malformed(
            "multi-byte tags are not used in certificates",
        ));
    }
    let (&first, rest) = rest.split_first().ok_or(Error::Malformed("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(Error::Malformed("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(Error::Malformed("truncated"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Encodes one TLV with a definite, minimal length.
fn encode_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_short_and_long_form() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let contents = vec![7u8; len];
            let tlv = encode_tlv(TAG_SEQUENCE, &contents);
            let (tag, body, rest) = read_tlv(&tlv).expect("parse");
            assert_eq!((tag, body.len(), rest.len()), (TAG_SEQUENCE, len, 0));
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let tlv = encode_tlv(TAG_SEQUENCE, &[1, 2, 3]);
        for cut in 0..tlv.len() {
            assert!(read_tlv(&tlv[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn names_list_organisations_before_the_common_name() {
        let name = encode_name("bob", &["a".to_string(), "b".to_string()]);
        let parsed = x509_parser::x509::X509Name::from_der(&name).map(|(_, n)| n);
        let parsed = parsed.expect("parse name");
        let orgs: Vec<_> = parsed
            .iter_organization()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        assert_eq!(orgs, ["a", "b"]);
        let cns: Vec<_> = parsed
            .iter_common_name()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        assert_eq!(cns, ["bob"]);
    }

    use x509_parser::prelude::FromDer;
}
