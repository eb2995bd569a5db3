//! Request binding as obshell's (Go's `encoding/json` and gin's form binding) does it:
//!
//! - JSON object keys match struct fields case-insensitively, an exact match first
//!   (`"Restore_Tenant_Name"` fills `restore_tenant_name`); unknown keys are ignored;
//! - a binding error names the field by its path (`zone_list[0].unit_num`) and never
//!   echoes the value that did not fit (it may be a password);
//! - booleans in query strings parse like Go's `strconv.ParseBool`.
//!
//! [`from_json`] deserializes through [`ValueDeserializer`], a deserializer over a parsed
//! [`serde_json::Value`] that renames keys to the field names a struct asks for
//! (`deserialize_struct` receives them) before handing the object to the struct.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

/// Why a body could not be bound: the field (path) and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    /// Path segments from the root, e.g. `["zone_list", "[0]", "unit_num"]`.
    path: Vec<String>,
    message: String,
}

impl BindError {
    fn at(mut self, segment: String) -> BindError {
        self.path.insert(0, segment);
        self
    }

    /// The field path, `""` for the whole body.
    pub fn path(&self) -> String {
        let mut path = String::new();
        for segment in &self.path {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
        }
        path
    }

    /// What was wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{path}: {}", self.message)
        }
    }
}

impl std::error::Error for BindError {}

/// The kind of an unexpected value, without the value itself.
fn kind(unexpected: &de::Unexpected<'_>) -> &'static str {
    use de::Unexpected::*;
    match unexpected {
        Bool(_) => "boolean",
        Unsigned(_) | Signed(_) => "integer",
        Float(_) => "floating point number",
        Char(_) => "character",
        Str(_) => "string",
        Bytes(_) => "bytes",
        Unit => "null",
        Option => "optional value",
        NewtypeStruct => "newtype struct",
        Seq => "sequence",
        Map => "map",
        Enum => "enum",
        UnitVariant => "unit variant",
        NewtypeVariant => "newtype variant",
        TupleVariant => "tuple variant",
        StructVariant => "struct variant",
        Other(_) => "value",
    }
}

impl de::Error for BindError {
    fn custom<T: fmt::Display>(message: T) -> BindError {
        BindError {
            path: Vec::new(),
            message: message.to_string(),
        }
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> BindError {
        BindError::custom(format_args!(
            "invalid type: {}, expected {expected}",
            kind(&unexpected)
        ))
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> BindError {
        BindError::custom(format_args!(
            "invalid value: {}, expected {expected}",
            kind(&unexpected)
        ))
    }

    fn missing_field(field: &'static str) -> BindError {
        BindError {
            path: vec![field.to_string()],
            message: "missing field".to_string(),
        }
    }
}

/// Binds a JSON body. An empty (or all-whitespace) body is `{}`, as obshell's
/// `PaddingBody` makes it.
///
/// # Errors
/// Malformed JSON, or a value that does not fit its field (named by its path).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BindError> {
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(bytes).map_err(|err| syntax_error(bytes, &err))?
    };
    T::deserialize(ValueDeserializer(&value))
}

/// A body that is not JSON, named by the field whose value broke it where there is one
/// (`{"max_cpu": 1e400}`: `max_cpu`, number out of range).
fn syntax_error(bytes: &[u8], err: &serde_json::Error) -> BindError {
    let path = match err.classify() {
        serde_json::error::Category::Syntax => path_at(bytes, err.line(), err.column()),
        _ => Vec::new(),
    };
    BindError {
        path,
        message: format!(
            "invalid JSON at line {} column {}: {}",
            err.line(),
            err.column(),
            json_error_kind(err)
        ),
    }
}

/// A JSON syntax error's kind, without the input (which may hold a password): serde_json's
/// syntax codes are fixed texts ("number out of range", "expected value").
fn json_error_kind(err: &serde_json::Error) -> String {
    match err.classify() {
        serde_json::error::Category::Io => "read error".to_string(),
        serde_json::error::Category::Syntax => {
            let text = err.to_string();
            let suffix = format!(" at line {} column {}", err.line(), err.column());
            text.strip_suffix(&suffix)
                .unwrap_or("syntax error")
                .to_string()
        }
        serde_json::error::Category::Data => "data error".to_string(),
        serde_json::error::Category::Eof => "unexpected end of input".to_string(),
    }
}

/// One open container while scanning for [`path_at`].
enum Frame {
    Object { key: Option<String>, in_value: bool },
    Array { index: usize },
}

/// The path of the value being read at (`line`, `column`) of `bytes` (serde_json's
/// 1-based position), from a scan of the text before it: keys of the open objects and
/// indexes of the open arrays.
fn path_at(bytes: &[u8], line: usize, column: usize) -> Vec<String> {
    let line_start = bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(index, _)| index + 1);
    let end = if line <= 1 {
        column
    } else {
        line_start + column
    }
    .min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut index = 0;
    while index < end {
        match bytes[index] {
            b'"' => {
                let start = index + 1;
                index = start;
                while index < end && bytes[index] != b'"' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key =
                        Some(String::from_utf8_lossy(&bytes[start..index.min(end)]).into_owned());
                }
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => (*key, *in_value) = (None, false),
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        index += 1;
    }
    stack
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Object {
                key: Some(key),
                in_value: true,
            } => Some(key),
            Frame::Object { .. } => None,
            Frame::Array { index } => Some(format!("[{index}]")),
        })
        .collect()
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
/// gin binds an empty form value of a bool as false.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What a value is, for an error message (without the value's text).
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(flag) => de::Unexpected::Bool(*flag),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(_) => de::Unexpected::Str(""),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// A deserializer over a parsed value that matches object keys to struct fields
/// case-insensitively (see the module docs).
#[derive(Clone, Copy)]
pub struct ValueDeserializer<'a>(pub &'a Value);

/// The object with its keys renamed to `fields` where they match only by case. When
/// several keys map to one field, the exact one wins, else the last (Go's rule).
fn fold_keys<'a>(
    object: &'a Map<String, Value>,
    fields: &[&'static str],
) -> Vec<(String, &'a Value)> {
    let mut out: Vec<(String, &'a Value, bool)> = Vec::with_capacity(object.len());
    for (key, value) in object {
        let (name, exact) = if fields.contains(&key.as_str()) {
            (key.clone(), true)
        } else if let Some(field) = fields.iter().find(|field| field.eq_ignore_ascii_case(key)) {
            (field.to_string(), false)
        } else {
            (key.clone(), true)
        };
        match out.iter_mut().find(|(known, _, _)| *known == name) {
            Some(slot) if exact || !slot.2 => *slot = (name, value, exact),
            Some(_) => {}
            None => out.push((name, value, exact)),
        }
    }
    out.into_iter()
        .map(|(name, value, _)| (name, value))
        .collect()
}

struct MapAccess<'a> {
    entries: std::vec::IntoIter<(String, &'a Value)>,
    current: Option<(String, &'a Value)>,
}

impl<'de, 'a> de::MapAccess<'de> for MapAccess<'a> {
    type Error = BindError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BindError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let parsed = seed.deserialize(key.as_str().into_deserializer())?;
        self.current = Some((key, value));
        Ok(Some(parsed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, BindError> {
        let Some((key, value)) = self.current.take() else {
            return Err(de::Error::custom("value without a key"));
        };
        seed.deserialize(ValueDeserializer(value))
            .map_err(|err| err.at(key))
    }
}

struct SeqAccess<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de, 'a> de::SeqAccess<'de> for SeqAccess<'a> {
    type Error = BindError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BindError> {
        let Some((index, item)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(ValueDeserializer(item))
            .map(Some)
            .map_err(|err| err.at(format!("[{index}]")))
    }
}

impl<'de, 'a> de::Deserializer<'de> for ValueDeserializer<'a> {
    type Error = BindError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(*value),
            Value::Number(number) => {
                if let Some(value) = number.as_u64() {
                    visitor.visit_u64(value)
                } else if let Some(value) = number.as_i64() {
                    visitor.visit_i64(value)
                } else {
                    visitor.visit_f64(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(text) => visitor.visit_str(text),
            Value::Array(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
            }),
            Value::Object(object) => visitor.visit_map(MapAccess {
                entries: object
                    .iter()
                    .map(|(key, value)| (key.clone(), value))
                    .collect::<Vec<_>>()
                    .into_iter(),
                current: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BindError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BindError> {
        match self.0 {
            Value::Object(object) => visitor.visit_map(MapAccess {
                entries: fold_keys(object, fields).into_iter(),
                current: None,
            }),
            // Go binds structs from objects only (serde would take a sequence too).
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BindError> {
        self.0
            .clone()
            .deserialize_enum(name, variants, visitor)
            .map_err(<BindError as de::Error>::custom)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BindError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Zone {
        name: String,
        unit_num: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Param {
        restore_tenant_name: String,
        #[serde(default)]
        zone_list: Option<Vec<Zone>>,
        #[serde(default)]
        decryption: Vec<String>,
    }

    #[test]
    fn keys_match_fields_case_insensitively_exact_first() {
        let param: Param = from_json(
            br#"{"Restore_Tenant_Name":"t1","ZONE_LIST":[{"Name":"z1","unit_NUM":1}],"other":1}"#,
        )
        .unwrap();
        assert_eq!(param.restore_tenant_name, "t1");
        assert_eq!(
            param.zone_list,
            Some(vec![Zone {
                name: "z1".into(),
                unit_num: 1
            }])
        );
        // An exact key wins over a case variant, whatever the order.
        for body in [
            br#"{"RESTORE_TENANT_NAME":"a","restore_tenant_name":"b"}"#.as_slice(),
            br#"{"restore_tenant_name":"b","RESTORE_TENANT_NAME":"a"}"#.as_slice(),
        ] {
            let param: Param = from_json(body).unwrap();
            assert_eq!(param.restore_tenant_name, "b");
        }
    }

    #[test]
    fn errors_name_the_field_path_and_never_echo_the_value() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"{"restore_tenant_name":"t","zone_list":[{"name":"z1","unit_num":"x"}]}"#,
                "zone_list[0].unit_num: invalid type: string, expected i64",
            ),
            (
                br#"{"restore_tenant_name":"t","decryption":"hunter2"}"#,
                "decryption: invalid type: string, expected a sequence",
            ),
            (br#"{"zone_list":[]}"#, "restore_tenant_name: missing field"),
            (
                br#"{"restore_tenant_name":"t""#,
                "invalid JSON at line 1 column 26: unexpected end of input",
            ),
            (br#"[1]"#, "invalid type: sequence, expected struct Param"),
        ];
        for (body, expected) in cases {
            let err = from_json::<Param>(body).unwrap_err();
            assert_eq!(err.to_string(), *expected);
            assert!(!err.to_string().contains("hunter2"));
        }
        // An empty body is an empty object.
        assert_eq!(
            from_json::<Param>(b"  ").unwrap_err().to_string(),
            "restore_tenant_name: missing field"
        );
    }

    #[test]
    fn a_number_json_cannot_hold_is_refused_naming_its_field() {
        let cases: &[(&[u8], &str, &str)] = &[
            (
                br#"{"restore_tenant_name":"t","zone_list":[{"name":"z1","unit_num":1e400}]}"#,
                "zone_list[0].unit_num",
                "number out of range",
            ),
            (
                b"{\n  \"decryption\": [\"a\\\"b,\", \"c\"],\n  \"restore_tenant_name\": -1e999\n}",
                "restore_tenant_name",
                "number out of range",
            ),
            (
                br#"{"zone_list":[1, NaN]}"#,
                "zone_list[1]",
                "expected value",
            ),
            (
                br#"{"a":{"b":1},"unit_num":1e999}"#,
                "unit_num",
                "number out of range",
            ),
            (br#"1e400"#, "", "number out of range"),
        ];
        for (body, path, kind) in cases {
            let err = from_json::<Param>(body).unwrap_err();
            assert_eq!(err.path(), *path, "{err}");
            assert!(err.message().starts_with("invalid JSON at line "), "{err}");
            assert!(err.message().ends_with(kind), "{err}");
        }
    }

    #[test]
    fn parse_bool_is_go_strconv_parse_bool() {
        for text in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(text), Some(true), "{text}");
        }
        for text in ["", "0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(text), Some(false), "{text}");
        }
        for text in ["yes", "tRUE", "2", " true"] {
            assert_eq!(parse_bool(text), None, "{text}");
        }
    }
}
