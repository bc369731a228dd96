//! The protobuf wire format: varints, fixed-width numbers, length-delimited fields and
//! skipping of unknown fields, with byte offsets and field paths for errors.

use std::fmt;

use super::ProtobufError;

/// A protobuf wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// 0: a varint.
    Varint,
    /// 1: eight bytes.
    Fixed64,
    /// 2: a length and that many bytes.
    Len,
    /// 3: the start of a (deprecated) group.
    StartGroup,
    /// 4: the end of a group.
    EndGroup,
    /// 5: four bytes.
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<WireType> {
        Some(match bits {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }

    /// The protobuf name of the wire type, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "64-bit",
            WireType::Len => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "32-bit",
        }
    }
}

/// Where in the object a field is, as a chain of borrowed segments: rendered only when an
/// error needs it (`spec.template.spec.containers[0].image`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldPath<'a> {
    /// The object itself.
    Root,
    /// A field of the parent.
    Field(&'a FieldPath<'a>, &'a str),
    /// An item of the parent list.
    Index(&'a FieldPath<'a>, usize),
    /// A value of the parent map.
    Key(&'a FieldPath<'a>, &'a str),
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Root => f.write_str("<object>"),
            FieldPath::Field(FieldPath::Root, name) => f.write_str(name),
            FieldPath::Field(parent, name) => write!(f, "{parent}.{name}"),
            FieldPath::Index(parent, index) => write!(f, "{parent}[{index}]"),
            FieldPath::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
        }
    }
}

/// Reads one message's bytes; offsets in errors are counted from the start of the body.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The body offset of `bytes[0]`.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`, which start at `base` in the body.
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The body offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn truncated(&self, path: &FieldPath<'_>) -> ProtobufError {
        ProtobufError::Truncated {
            offset: self.offset(),
            path: path.to_string(),
        }
    }

    /// A varint.
    pub(crate) fn varint(&mut self, path: &FieldPath<'_>) -> Result<u64, ProtobufError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(self.truncated(path));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::BadVarint {
            offset: start,
            path: path.to_string(),
        })
    }

    /// A field key: its number and wire type. `path` names the enclosing message.
    pub(crate) fn key(&mut self, path: &FieldPath<'_>) -> Result<(u32, WireType), ProtobufError> {
        let offset = self.offset();
        let key = self.varint(path)?;
        let number = key >> 3;
        let wire = WireType::from_bits(key & 7).ok_or_else(|| ProtobufError::BadWireType {
            wire_type: key & 7,
            offset,
            path: path.to_string(),
        })?;
        match u32::try_from(number) {
            Ok(tag) if (1..=536_870_911).contains(&tag) => Ok((tag, wire)),
            _ => Err(ProtobufError::BadFieldNumber {
                number,
                offset,
                path: path.to_string(),
            }),
        }
    }

    /// Eight little-endian bytes.
    pub(crate) fn fixed64(&mut self, path: &FieldPath<'_>) -> Result<u64, ProtobufError> {
        let bytes = self.take(8, path)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// Four little-endian bytes.
    pub(crate) fn fixed32(&mut self, path: &FieldPath<'_>) -> Result<u32, ProtobufError> {
        let bytes = self.take(4, path)?;
        let mut array = [0u8; 4];
        array.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(array))
    }

    /// A length-delimited payload, with the body offset it starts at.
    pub(crate) fn len_delimited(
        &mut self,
        path: &FieldPath<'_>,
    ) -> Result<(&'a [u8], usize), ProtobufError> {
        let length = self.varint(path)?;
        let length = usize::try_from(length).map_err(|_| self.truncated(path))?;
        let offset = self.offset();
        Ok((self.take(length, path)?, offset))
    }

    fn take(&mut self, length: usize, path: &FieldPath<'_>) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.truncated(path))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// Skips the value of a field this decoder doesn't know, as upstream does.
    pub(crate) fn skip(
        &mut self,
        tag: u32,
        wire: WireType,
        path: &FieldPath<'_>,
    ) -> Result<(), ProtobufError> {
        match wire {
            WireType::Varint => self.varint(path).map(drop),
            WireType::Fixed64 => self.take(8, path).map(drop),
            WireType::Fixed32 => self.take(4, path).map(drop),
            WireType::Len => self.len_delimited(path).map(drop),
            WireType::StartGroup => {
                // Skip to the matching end-group key; nested groups nest.
                let mut open = vec![tag];
                while let Some(&expected) = open.last() {
                    let offset = self.offset();
                    let (inner, inner_wire) = self.key(path)?;
                    match inner_wire {
                        WireType::StartGroup => open.push(inner),
                        WireType::EndGroup if inner == expected => {
                            open.pop();
                        }
                        WireType::EndGroup => {
                            return Err(ProtobufError::UnbalancedGroup {
                                offset,
                                path: path.to_string(),
                            });
                        }
                        other => self.skip(inner, other, path)?,
                    }
                    if open.len() > super::MAX_DEPTH {
                        return Err(ProtobufError::TooDeep {
                            offset,
                            path: path.to_string(),
                        });
                    }
                }
                Ok(())
            }
            WireType::EndGroup => Err(ProtobufError::UnbalancedGroup {
                offset: self.offset(),
                path: path.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_and_overlong_ones_fail() {
        let mut reader = Reader::new(&[0x96, 0x01, 0x00], 0);
        assert_eq!(reader.varint(&FieldPath::Root).ok(), Some(150));
        assert_eq!(reader.varint(&FieldPath::Root).ok(), Some(0));
        assert!(reader.is_empty());
        let mut reader = Reader::new(&[0xff; 11], 7);
        assert!(matches!(
            reader.varint(&FieldPath::Root),
            Err(ProtobufError::BadVarint { offset: 7, .. })
        ));
        let mut reader = Reader::new(&[0x80], 3);
        assert!(matches!(
            reader.varint(&FieldPath::Root),
            Err(ProtobufError::Truncated { offset: 4, .. })
        ));
    }

    #[test]
    fn groups_are_skipped_whole() {
        // Field 1 start-group, field 2 varint 5 inside, field 1 end-group, then field 3.
        let bytes = [0x0b, 0x10, 0x05, 0x0c, 0x18, 0x01];
        let mut reader = Reader::new(&bytes, 0);
        let (tag, wire) = reader.key(&FieldPath::Root).expect("key");
        reader.skip(tag, wire, &FieldPath::Root).expect("skips");
        assert_eq!(
            reader.key(&FieldPath::Root).ok(),
            Some((3, WireType::Varint))
        );
    }

    #[test]
    fn paths_render_like_field_paths() {
        let spec = FieldPath::Field(&FieldPath::Root, "spec");
        let containers = FieldPath::Field(&spec, "containers");
        let first = FieldPath::Index(&containers, 0);
        let image = FieldPath::Field(&first, "image");
        assert_eq!(image.to_string(), "spec.containers[0].image");
        let data = FieldPath::Field(&FieldPath::Root, "data");
        assert_eq!(FieldPath::Key(&data, "a").to_string(), "data[\"a\"]");
    }
}
