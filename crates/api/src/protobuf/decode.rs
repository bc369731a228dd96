//! The table-driven walk from protobuf bytes to the JSON the same Go object would marshal to.
//!
//! Decoding happens in two steps per message. First every field occurrence is collected
//! into an accumulator (a later scalar replaces an earlier one, repeated items append, and
//! several occurrences of one message field merge, as protobuf requires). Then the
//! accumulator is rendered following the Go struct the message came from: which fields
//! appear, and as what, is the [`Emit`] the table records per field.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::format::{self, GO_ZERO_UNIX};
use super::table::{Emit, MapValue, Message, Scalar, Special, Table, Type};
use super::wire::{FieldPath, Reader, WireType};
use super::{MAX_DEPTH, ProtobufError};

/// A scalar as read, before it is rendered.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Int(i64),
    Bool(bool),
    Float(f64),
    Str(&'a [u8]),
    Bytes(&'a [u8]),
}

/// What one field collected.
#[derive(Debug)]
enum Slot<'a> {
    Absent,
    Scalar(Raw<'a>),
    Message(Box<Acc<'a>>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

/// The fields of one message collected so far.
#[derive(Debug)]
struct Acc<'a> {
    message: usize,
    slots: Vec<Slot<'a>>,
    /// Whether any bytes were read into it (an empty `Time` is Go's zero time).
    nonempty: bool,
}

impl<'a> Acc<'a> {
    fn new(table: &Table, message: usize) -> Self {
        let slots = table
            .message(message)
            .fields
            .iter()
            .map(|_| Slot::Absent)
            .collect();
        Acc {
            message,
            slots,
            nonempty: false,
        }
    }
}

/// Decodes the bytes of one message (`message`, an index into `table`) into JSON.
/// `offset` is where `bytes` start in the body, for errors.
pub(crate) fn message_to_json(
    table: &Table,
    message: usize,
    bytes: &[u8],
    offset: usize,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let decoder = Decoder { table };
    let mut acc = Acc::new(table, message);
    decoder.read_into(&mut acc, bytes, offset, &FieldPath::Root, depth)?;
    decoder.render(acc, &FieldPath::Root, depth)
}

struct Decoder<'t> {
    table: &'t Table,
}

impl Decoder<'_> {
    /// Reads one occurrence of a message's bytes into its accumulator.
    fn read_into<'a>(
        &self,
        acc: &mut Acc<'a>,
        bytes: &'a [u8],
        offset: usize,
        path: &FieldPath<'_>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                offset,
                path: path.to_string(),
            });
        }
        acc.nonempty |= !bytes.is_empty();
        let message: &Message = self.table.message(acc.message);
        let mut reader = Reader::new(bytes, offset);
        while !reader.is_empty() {
            let key_offset = reader.offset();
            let (tag, wire) = reader.key(path)?;
            let Some(index) = message.field_index(tag) else {
                reader.skip(tag, wire, path)?;
                continue;
            };
            let field = &message.fields[index];
            let field_path = FieldPath::Field(path, &field.json);
            let wrong_wire = |expected: WireType| ProtobufError::WrongWireType {
                path: field_path.to_string(),
                tag,
                found: wire.name(),
                expected: expected.name(),
                offset: key_offset,
            };
            match (field.ty, field.repeated) {
                (Type::Scalar(scalar), false) => {
                    let expected = wire_type_of(scalar);
                    if wire != expected {
                        return Err(wrong_wire(expected));
                    }
                    let raw = read_scalar(&mut reader, scalar, &field_path)?;
                    acc.slots[index] = Slot::Scalar(raw);
                }
                (Type::Scalar(scalar), true) => {
                    let expected = wire_type_of(scalar);
                    let items = slot_list(&mut acc.slots[index]);
                    if wire == expected {
                        let raw = read_scalar(&mut reader, scalar, &field_path)?;
                        items.push(scalar_json(raw, &field_path)?);
                    } else if wire == WireType::Len && expected != WireType::Len {
                        // Packed numbers: accepted as protobuf requires, though Go's encoder
                        // never packs these messages.
                        let (packed, start) = reader.len_delimited(&field_path)?;
                        let mut inner = Reader::new(packed, start);
                        while !inner.is_empty() {
                            let raw = read_scalar(&mut inner, scalar, &field_path)?;
                            items.push(scalar_json(raw, &field_path)?);
                        }
                    } else {
                        return Err(wrong_wire(expected));
                    }
                }
                (Type::Message(target), repeated) => {
                    if wire != WireType::Len {
                        return Err(wrong_wire(WireType::Len));
                    }
                    let (payload, start) = reader.len_delimited(&field_path)?;
                    if repeated {
                        let items = slot_list(&mut acc.slots[index]);
                        let item_path = FieldPath::Index(&field_path, items.len());
                        let mut item = Acc::new(self.table, target);
                        self.read_into(&mut item, payload, start, &item_path, depth + 1)?;
                        let value = self.render(item, &item_path, depth + 1)?;
                        slot_list(&mut acc.slots[index]).push(value);
                    } else {
                        if !matches!(acc.slots[index], Slot::Message(_)) {
                            acc.slots[index] =
                                Slot::Message(Box::new(Acc::new(self.table, target)));
                        }
                        if let Slot::Message(inner) = &mut acc.slots[index] {
                            self.read_into(inner, payload, start, &field_path, depth + 1)?;
                        }
                    }
                }
                (Type::Map(value_type), _) => {
                    if wire != WireType::Len {
                        return Err(wrong_wire(WireType::Len));
                    }
                    let (entry, start) = reader.len_delimited(&field_path)?;
                    let (key, value) =
                        self.map_entry(value_type, entry, start, &field_path, depth + 1)?;
                    if !matches!(acc.slots[index], Slot::Map(_)) {
                        acc.slots[index] = Slot::Map(Map::new());
                    }
                    if let Slot::Map(map) = &mut acc.slots[index] {
                        map.insert(key, value);
                    }
                }
            }
        }
        Ok(())
    }

    /// One map entry: key 1, value 2; either may be absent (then zero).
    fn map_entry(
        &self,
        value_type: MapValue,
        bytes: &[u8],
        offset: usize,
        path: &FieldPath<'_>,
        depth: usize,
    ) -> Result<(String, Value), ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                offset,
                path: path.to_string(),
            });
        }
        let mut reader = Reader::new(bytes, offset);
        let mut key: &[u8] = &[];
        let mut value: Option<(&[u8], usize)> = None;
        let mut scalar_value: Option<Raw<'_>> = None;
        while !reader.is_empty() {
            let key_offset = reader.offset();
            let (tag, wire) = reader.key(path)?;
            match tag {
                1 => {
                    if wire != WireType::Len {
                        return Err(ProtobufError::WrongWireType {
                            path: format!("{path} (map key)"),
                            tag,
                            found: wire.name(),
                            expected: WireType::Len.name(),
                            offset: key_offset,
                        });
                    }
                    key = reader.len_delimited(path)?.0;
                }
                2 => match value_type {
                    MapValue::Scalar(scalar) => {
                        let expected = wire_type_of(scalar);
                        if wire != expected {
                            return Err(ProtobufError::WrongWireType {
                                path: format!("{path} (map value)"),
                                tag,
                                found: wire.name(),
                                expected: expected.name(),
                                offset: key_offset,
                            });
                        }
                        scalar_value = Some(read_scalar(&mut reader, scalar, path)?);
                    }
                    MapValue::Message(_) => {
                        if wire != WireType::Len {
                            return Err(ProtobufError::WrongWireType {
                                path: format!("{path} (map value)"),
                                tag,
                                found: wire.name(),
                                expected: WireType::Len.name(),
                                offset: key_offset,
                            });
                        }
                        let (bytes, start) = reader.len_delimited(path)?;
                        value = Some((bytes, start));
                    }
                },
                _ => reader.skip(tag, wire, path)?,
            }
        }
        let key = String::from_utf8_lossy(key).into_owned();
        let entry_path = FieldPath::Key(path, &key);
        let value = match value_type {
            MapValue::Scalar(scalar) => match scalar_value {
                Some(raw) => scalar_json(raw, &entry_path)?,
                None => zero_scalar(scalar),
            },
            MapValue::Message(target) => {
                let mut acc = Acc::new(self.table, target);
                if let Some((bytes, start)) = value {
                    self.read_into(&mut acc, bytes, start, &entry_path, depth)?;
                }
                self.render(acc, &entry_path, depth)?
            }
        };
        Ok((key, value))
    }

    /// Renders a collected message as Go's JSON would write its struct.
    fn render(
        &self,
        acc: Acc<'_>,
        path: &FieldPath<'_>,
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        let message = self.table.message(acc.message);
        if let Some(special) = message.special {
            return self.render_special(special, acc, path, depth);
        }
        let mut object = Map::new();
        self.render_fields(acc, &mut object, path, depth)?;
        Ok(Value::Object(object))
    }

    /// Writes a message's fields into `object` (which an inline embedding shares with its
    /// parent).
    fn render_fields(
        &self,
        acc: Acc<'_>,
        object: &mut Map<String, Value>,
        path: &FieldPath<'_>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                offset: 0,
                path: path.to_string(),
            });
        }
        let message = self.table.message(acc.message);
        for (field, slot) in message.fields.iter().zip(acc.slots) {
            let field_path = FieldPath::Field(path, &field.json);
            if field.inline {
                let inner = match slot {
                    Slot::Message(inner) => *inner,
                    _ => match field.ty {
                        Type::Message(target) => Acc::new(self.table, target),
                        _ => continue,
                    },
                };
                self.render_fields(inner, object, path, depth + 1)?;
                continue;
            }
            let value = match (slot, field.emit) {
                (Slot::Absent, Emit::IfSet | Emit::IfNonzero) => None,
                (Slot::Absent, Emit::IfSetElseNull) => Some(Value::Null),
                (Slot::Absent, Emit::Always) => Some(match field.ty {
                    Type::Scalar(scalar) if !field.repeated => zero_scalar(scalar),
                    Type::Message(target) if !field.repeated => {
                        self.render(Acc::new(self.table, target), &field_path, depth + 1)?
                    }
                    _ => Value::Null,
                }),
                (Slot::Scalar(raw), emit) => {
                    if emit == Emit::IfNonzero && is_zero(raw) {
                        None
                    } else {
                        Some(scalar_json(raw, &field_path)?)
                    }
                }
                (Slot::List(items), emit) => {
                    (emit != Emit::IfNonzero || !items.is_empty()).then_some(Value::Array(items))
                }
                (Slot::Map(map), emit) => {
                    (emit != Emit::IfNonzero || !map.is_empty()).then_some(Value::Object(map))
                }
                (Slot::Message(inner), _) => Some(self.render(*inner, &field_path, depth + 1)?),
            };
            if let Some(value) = value {
                object.insert(field.json.clone(), value);
            }
        }
        Ok(())
    }

    /// Renders the types whose JSON is not an object of their fields.
    fn render_special(
        &self,
        special: Special,
        acc: Acc<'_>,
        path: &FieldPath<'_>,
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        let int = |i: usize| match acc.slots.get(i) {
            Some(Slot::Scalar(Raw::Int(v))) => *v,
            _ => 0,
        };
        let bytes = |i: usize| match acc.slots.get(i) {
            Some(Slot::Scalar(Raw::Str(b) | Raw::Bytes(b))) => Some(*b),
            _ => None,
        };
        Ok(match special {
            Special::Time | Special::MicroTime => {
                let (seconds, nanos) = (int(0), int(1));
                if !acc.nonempty || (seconds == GO_ZERO_UNIX && nanos == 0) {
                    return Ok(Value::Null);
                }
                let civil =
                    format::civil(seconds, nanos).ok_or_else(|| ProtobufError::TimeOutOfRange {
                        path: path.to_string(),
                        seconds,
                        nanos,
                    })?;
                Value::String(if special == Special::Time {
                    civil.rfc3339()
                } else {
                    civil.rfc3339_micro()
                })
            }
            Special::Duration => Value::String(format::go_duration(int(0))),
            Special::IntOrString => match int(0) {
                0 => Value::Number(Number::from(int(1))),
                1 => Value::String(lossy(bytes(2).unwrap_or_default())),
                other => {
                    return Err(ProtobufError::IntOrStringType {
                        path: path.to_string(),
                        value: other,
                    });
                }
            },
            Special::Quantity => match bytes(0) {
                Some(text) => Value::String(lossy(text)),
                None => Value::String("0".to_string()),
            },
            Special::FieldsV1 | Special::RawExtension => match bytes(0) {
                None | Some([]) => Value::Null,
                Some(raw) if special == Special::RawExtension && raw.starts_with(&super::MAGIC) => {
                    // An object embedded in protobuf: decode it too.
                    let (_, _, object) = super::decode_at(raw, depth + 1)?;
                    object
                }
                Some(raw) => {
                    serde_json::from_slice(raw).map_err(|source| ProtobufError::EmbeddedJson {
                        path: path.to_string(),
                        source,
                    })?
                }
            },
            Special::List => match acc.slots.into_iter().next() {
                Some(Slot::List(items)) => Value::Array(items),
                _ => Value::Null,
            },
        })
    }
}

/// The list a repeated field collects into.
fn slot_list<'s>(slot: &'s mut Slot<'_>) -> &'s mut Vec<Value> {
    if !matches!(slot, Slot::List(_)) {
        *slot = Slot::List(Vec::new());
    }
    match slot {
        Slot::List(items) => items,
        // Just made a list above.
        _ => unreachable!("slot is a list"),
    }
}

/// The wire type a scalar travels in.
fn wire_type_of(scalar: Scalar) -> WireType {
    match scalar {
        Scalar::Int32 | Scalar::Int64 | Scalar::Bool => WireType::Varint,
        Scalar::String | Scalar::Bytes => WireType::Len,
        Scalar::Double => WireType::Fixed64,
        Scalar::Float => WireType::Fixed32,
    }
}

/// Reads one scalar (the wire type already checked).
fn read_scalar<'a>(
    reader: &mut Reader<'a>,
    scalar: Scalar,
    path: &FieldPath<'_>,
) -> Result<Raw<'a>, ProtobufError> {
    Ok(match scalar {
        // Go reads int32 fields by truncating the varint, as the protobuf spec says.
        Scalar::Int32 => Raw::Int(i64::from(reader.varint(path)? as u32 as i32)),
        Scalar::Int64 => Raw::Int(reader.varint(path)? as i64),
        Scalar::Bool => Raw::Bool(reader.varint(path)? != 0),
        Scalar::String => Raw::Str(reader.len_delimited(path)?.0),
        Scalar::Bytes => Raw::Bytes(reader.len_delimited(path)?.0),
        Scalar::Double => Raw::Float(f64::from_bits(reader.fixed64(path)?)),
        Scalar::Float => Raw::Float(f64::from(f32::from_bits(reader.fixed32(path)?))),
    })
}

/// Whether Go's `omitempty` drops this value.
fn is_zero(raw: Raw<'_>) -> bool {
    match raw {
        Raw::Int(v) => v == 0,
        Raw::Bool(v) => !v,
        Raw::Float(v) => v == 0.0,
        Raw::Str(v) | Raw::Bytes(v) => v.is_empty(),
    }
}

/// The JSON of a scalar: numbers, booleans, strings, base64 for bytes.
fn scalar_json(raw: Raw<'_>, path: &FieldPath<'_>) -> Result<Value, ProtobufError> {
    Ok(match raw {
        Raw::Int(v) => Value::Number(Number::from(v)),
        Raw::Bool(v) => Value::Bool(v),
        Raw::Float(v) => {
            Value::Number(
                Number::from_f64(v).ok_or_else(|| ProtobufError::NonFiniteNumber {
                    path: path.to_string(),
                })?,
            )
        }
        Raw::Str(v) => Value::String(lossy(v)),
        Raw::Bytes(v) => Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
    })
}

/// The zero value of a scalar, for fields Go always writes.
fn zero_scalar(scalar: Scalar) -> Value {
    match scalar {
        Scalar::Int32 | Scalar::Int64 | Scalar::Double | Scalar::Float => {
            Value::Number(Number::from(0))
        }
        Scalar::Bool => Value::Bool(false),
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
    }
}

/// A protobuf string as Go's JSON encoder writes it: invalid UTF-8 becomes U+FFFD.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
