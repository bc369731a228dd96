//! Static bearer tokens from a CSV file (`--token-auth-file`), in upstream's format: one record
//! per line, `token,user,uid[,"group1,group2"]`. Records with an empty token are skipped; a
//! later duplicate token replaces an earlier one. The file is read once, at start-up.
//!
//! Tokens are kept only as SHA-256 digests and never logged.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use async_trait::async_trait;

use super::{Error, TokenAuthenticator, UserInfo};

type Digest = [u8; 32];

/// The tokens of one token file.
pub struct TokenFile {
    path: PathBuf,
    users: HashMap<Digest, UserInfo>,
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("tokens", &self.users.len())
            .finish()
    }
}

impl TokenFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::TokenFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the CSV `text`; `path` names the file in errors and warnings.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let invalid = |record: usize, reason: String| Error::TokenFileInvalid {
            path: path.to_path_buf(),
            record,
            reason,
        };
        let mut users = HashMap::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut record_number = 0;
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            record_number += 1;
            let fields = parse_csv_record(line).map_err(|reason| invalid(record_number, reason))?;
            if fields.len() < 3 {
                return Err(invalid(
                    record_number,
                    format!(
                        "must have at least 3 columns (token, user name, user uid), found {}",
                        fields.len()
                    ),
                ));
            }
            if fields[0].is_empty() {
                tracing::warn!(file = %path.display(), record = record_number, "empty token in token file, skipped");
                continue;
            }
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups: fields
                    .get(3)
                    .map(|groups| {
                        groups
                            .split(',')
                            .filter(|g| !g.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                ..UserInfo::default()
            };
            if users.insert(digest(&fields[0]), user).is_some() {
                tracing::warn!(file = %path.display(), record = record_number, "duplicate token in token file, the later record wins");
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            users,
        })
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[async_trait]
impl TokenAuthenticator for TokenFile {
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, Error> {
        Ok(self.users.get(&digest(token)).cloned())
    }
}

fn digest(token: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Splits one CSV line into fields (RFC 4180 quoting: `"a,b"`, `""` for a quote inside quotes).
fn parse_csv_record(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous character after a quoted field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err("bare \" in an unquoted field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenFile, Error> {
        TokenFile::parse(text, Path::new("/etc/tokens.csv"))
    }

    async fn user(file: &TokenFile, token: &str) -> Option<UserInfo> {
        file.authenticate_token(token).await.expect("lookup")
    }

    #[tokio::test]
    async fn records_map_tokens_to_users_uids_and_groups() {
        let file = parse(
            "abc,alice,uid-1,\"devs,ops\"\n\
             def,bob,uid-2\n\
             \n\
             ghi,carol,uid-3,solo\r\n",
        )
        .expect("parse");
        assert_eq!(file.len(), 3);
        let alice = user(&file, "abc").await.expect("alice");
        assert_eq!(
            (alice.name.as_str(), alice.uid.as_str()),
            ("alice", "uid-1")
        );
        assert_eq!(alice.groups, ["devs", "ops"]);
        assert!(user(&file, "def").await.expect("bob").groups.is_empty());
        assert_eq!(user(&file, "ghi").await.expect("carol").groups, ["solo"]);
        assert_eq!(user(&file, "nope").await, None);
        assert_eq!(user(&file, "").await, None);
    }

    #[tokio::test]
    async fn empty_tokens_are_skipped_and_later_duplicates_win() {
        let file = parse(",nobody,0\nt,first,1\nt,second,2\n").expect("parse");
        assert_eq!(file.len(), 1);
        assert_eq!(user(&file, "t").await.expect("user").name, "second");
    }

    #[test]
    fn short_records_are_an_error_naming_file_and_record() {
        let err = parse("a,b,c\nonly,two\n").expect_err("error");
        assert_eq!(
            err.to_string(),
            "token file /etc/tokens.csv: record 2: must have at least 3 columns (token, user name, user uid), found 2"
        );
    }

    #[test]
    fn broken_quoting_is_an_error() {
        assert!(parse("a,b,\"c\n").is_err());
        assert!(parse("a,b,c\"d\n").is_err());
        assert!(parse("a,b,\"c\"d\n").is_err());
    }

    #[test]
    fn quotes_can_be_escaped_inside_quoted_fields() {
        assert_eq!(
            parse_csv_record(r#""a""b",c,"""#).expect("parse"),
            ["a\"b", "c", ""]
        );
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let file = parse("supersecret,alice,1\n").expect("parse");
        let debug = format!("{file:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
    }
}
