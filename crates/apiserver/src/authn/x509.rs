//! Users from client certificates: the common name is the user name and every organisation a
//! group. The TLS layer has already verified the chain against the cluster CA, the validity
//! period and the clientAuth usage; this only reads the subject, once per connection.

use x509_parser::{certificate::X509Certificate, prelude::FromDer};

use super::{Error, UserInfo};

/// The user of a verified client certificate (DER), `None` if its subject has no common name
/// (such a certificate identifies nobody, as upstream treats it).
pub fn user_from_certificate(der: &[u8]) -> Result<Option<UserInfo>, Error> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
    let subject = cert.subject();
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attr.as_str()
            .map(String::from)
            .map_err(|e| Error::Certificate(format!("subject attribute is not text: {e}")))
    };
    let Some(cn) = subject.iter_common_name().next() else {
        return Ok(None);
    };
    let name = text(cn)?;
    if name.is_empty() {
        return Ok(None);
    }
    let groups = subject
        .iter_organization()
        .map(text)
        .collect::<Result<_, _>>()?;
    Ok(Some(UserInfo {
        name,
        groups,
        ..UserInfo::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{ClusterCa, LeafSpec};

    #[test]
    fn common_name_is_the_user_and_every_organisation_a_group() {
        let ca = ClusterCa::generate().expect("CA");
        let cert = ca
            .issue(&LeafSpec::client(
                "system:node:n1",
                &["system:nodes", "extra"],
            ))
            .expect("issue");
        let user = user_from_certificate(&cert.cert_der)
            .expect("parse")
            .expect("user");
        assert_eq!(user.name, "system:node:n1");
        assert_eq!(user.groups, ["system:nodes", "extra"]);
        assert!(user.uid.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(user_from_certificate(b"not a certificate").is_err());
    }
}
