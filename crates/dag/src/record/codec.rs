//! The binary encoding of records (format 2), and the reading of every format.
//!
//! A record is `[FORMAT_BINARY][kind][body]`. The body is the record's fields in
//! declaration order (without `v`: the format byte names the layout): unsigned integers
//! as LEB128 varints, signed ones zigzag, strings and lists length-prefixed, options
//! and enums behind a tag byte, timestamps as unix microseconds, id lists as deltas,
//! JSON values (`params`, `local`, ...) in a tagged form. Records written before this
//! format are JSON objects, so their first byte is `{`: [`decode`] reads both.
//!
//! Decoding never panics and never allocates more than the input can fill: every
//! length is checked against the bytes left, JSON values nest at most
//! [`MAX_VALUE_DEPTH`] deep (serde_json's own limit), and trailing bytes are an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use super::{Counters, DagRecord, LockRecord, LogRecord, NodeRecord, TaskRecord, RECORD_VERSION};
use crate::model::{FanOut, Flags, Maintenance, Operator, RetryPolicy, Scope, State};

/// First byte of a record in the binary format.
pub const FORMAT_BINARY: u8 = 2;
/// First byte of a record in the JSON format (format 1, written before format 2).
const FORMAT_JSON_START: u8 = b'{';
/// Deepest nesting of a JSON value the decoder accepts.
pub const MAX_VALUE_DEPTH: usize = 128;

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a valid record of the expected kind.
    Corrupt(String),
    /// A format this build does not read.
    UnsupportedVersion(u64),
}

fn corrupt(reason: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt(reason.into())
}

/// A record type with a binary layout.
pub trait Codec: Sized + serde::de::DeserializeOwned {
    /// The kind byte after the format byte.
    const KIND: u8;
    fn write_body(&self, out: &mut Writer);
    /// # Errors
    /// The body is not a valid record.
    fn read_body(input: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// `record` in the binary format.
pub fn encode<T: Codec>(record: &T) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(64));
    out.u8(FORMAT_BINARY);
    out.u8(T::KIND);
    record.write_body(&mut out);
    out.0
}

/// Reads a record in either format.
///
/// # Errors
/// [`DecodeError::Corrupt`] for bytes that are not a record of this kind,
/// [`DecodeError::UnsupportedVersion`] for a format or JSON `v` this build does not read.
pub fn decode<T: Codec>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.first() {
        None => Err(corrupt("empty record")),
        Some(&FORMAT_JSON_START) => decode_json(bytes),
        Some(&FORMAT_BINARY) => {
            let mut input = Reader(&bytes[1..]);
            let kind = input.u8()?;
            if kind != T::KIND {
                return Err(corrupt(format!("record kind {kind}, expected {}", T::KIND)));
            }
            let record = T::read_body(&mut input)?;
            if !input.0.is_empty() {
                return Err(corrupt(format!("{} trailing bytes", input.0.len())));
            }
            Ok(record)
        }
        Some(&other) => Err(DecodeError::UnsupportedVersion(u64::from(other))),
    }
}

/// Format 1: a JSON object with a `v` field.
fn decode_json<T: Codec>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let version = value.get("v").and_then(Value::as_u64).unwrap_or(0);
    if version != u64::from(RECORD_VERSION) {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

/// Appends the binary form of fields.
pub struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, byte: u8) {
        self.0.push(byte);
    }

    fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    fn u64(&mut self, mut value: u64) {
        while value >= 0x80 {
            // Truncation intended: the low seven bits, with the continuation bit.
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn u32(&mut self, value: u32) {
        self.u64(u64::from(value));
    }

    fn i64(&mut self, value: i64) {
        self.u64(((value << 1) ^ (value >> 63)) as u64);
    }

    fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }

    fn str(&mut self, text: &str) {
        self.len(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn time(&mut self, time: DateTime<Utc>) {
        self.i64(time.timestamp_micros());
    }

    fn opt_time(&mut self, time: Option<DateTime<Utc>>) {
        self.bool(time.is_some());
        if let Some(time) = time {
            self.time(time);
        }
    }

    /// Ids as deltas from the previous one (lists of consecutive ids take a byte each).
    fn ids(&mut self, ids: &[u64]) {
        self.len(ids.len());
        let mut previous = 0u64;
        for id in ids {
            self.i64(id.wrapping_sub(previous) as i64);
            previous = *id;
        }
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.u8(0),
            Value::Bool(false) => self.u8(1),
            Value::Bool(true) => self.u8(2),
            Value::Number(number) => self.number(number),
            Value::String(text) => {
                self.u8(6);
                self.str(text);
            }
            Value::Array(items) => {
                self.u8(7);
                self.values(items);
            }
            Value::Object(map) => {
                self.u8(8);
                self.map(map);
            }
        }
    }

    fn number(&mut self, number: &Number) {
        if let Some(value) = number.as_u64() {
            self.u8(3);
            self.u64(value);
        } else if let Some(value) = number.as_i64() {
            self.u8(4);
            self.i64(value);
        } else if let Some(value) = number.as_f64() {
            self.u8(5);
            self.0.extend_from_slice(&value.to_le_bytes());
        } else {
            // Only with serde_json's arbitrary precision: the number's text.
            self.u8(9);
            self.str(&number.to_string());
        }
    }

    fn values(&mut self, items: &[Value]) {
        self.len(items.len());
        for item in items {
            self.value(item);
        }
    }

    fn map(&mut self, map: &Map<String, Value>) {
        self.len(map.len());
        for (key, value) in map {
            self.str(key);
            self.value(value);
        }
    }

    fn state(&mut self, state: State) {
        self.u8(match state {
            State::Pending => 0,
            State::Ready => 1,
            State::Running => 2,
            State::Failed => 3,
            State::Succeed => 4,
        });
    }

    fn operator(&mut self, operator: Operator) {
        self.u8(match operator {
            Operator::Run => 0,
            Operator::Retry => 1,
            Operator::Rollback => 2,
            Operator::Cancel => 3,
            Operator::Pass => 4,
        });
    }

    fn flags(&mut self, flags: Flags) {
        let bits = [
            flags.can_retry,
            flags.can_rollback,
            flags.can_cancel,
            flags.can_pass,
            flags.can_continue,
        ];
        let mut byte = 0u8;
        for (bit, set) in bits.into_iter().enumerate() {
            byte |= u8::from(set) << bit;
        }
        self.u8(byte);
    }
}

/// Reads fields of the binary form; every read checks the bytes left.
pub struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&byte, rest) = self.0.split_first().ok_or_else(|| corrupt("truncated"))?;
        self.0 = rest;
        Ok(byte)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(format!("bad bool {other}"))),
        }
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint longer than 10 bytes"))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.u64()?).map_err(|_| corrupt("u32 out of range"))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let raw = self.u64()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A length of a list whose elements take at least one byte each.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = self.u64()?;
        usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.0.len())
            .ok_or_else(|| corrupt(format!("length {len} beyond the record")))
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let len = self.len()?;
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(text.to_vec()).map_err(|_| corrupt("string is not UTF-8"))
    }

    fn time(&mut self) -> Result<DateTime<Utc>, DecodeError> {
        let micros = self.i64()?;
        DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt(format!("timestamp {micros} out of range")))
    }

    fn opt_time(&mut self) -> Result<Option<DateTime<Utc>>, DecodeError> {
        if self.bool()? {
            self.time().map(Some)
        } else {
            Ok(None)
        }
    }

    fn ids(&mut self) -> Result<Vec<u64>, DecodeError> {
        let len = self.len()?;
        let mut ids = Vec::with_capacity(len);
        let mut previous = 0u64;
        for _ in 0..len {
            previous = previous.wrapping_add(self.i64()? as u64);
            ids.push(previous);
        }
        Ok(ids)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(corrupt("JSON value nested too deep"));
        }
        Ok(match self.u8()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::from(self.u64()?),
            4 => Value::from(self.i64()?),
            5 => {
                let mut bytes = [0u8; 8];
                for byte in &mut bytes {
                    *byte = self.u8()?;
                }
                Number::from_f64(f64::from_le_bytes(bytes))
                    .map(Value::Number)
                    .ok_or_else(|| corrupt("number is not finite"))?
            }
            6 => Value::String(self.str()?),
            7 => Value::Array(self.values(depth + 1)?),
            8 => Value::Object(self.map(depth + 1)?),
            9 => Value::Number(
                self.str()?
                    .parse::<Number>()
                    .map_err(|e| corrupt(e.to_string()))?,
            ),
            tag => return Err(corrupt(format!("bad JSON value tag {tag}"))),
        })
    }

    fn values(&mut self, depth: usize) -> Result<Vec<Value>, DecodeError> {
        let len = self.len()?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth)?);
        }
        Ok(items)
    }

    fn map(&mut self, depth: usize) -> Result<Map<String, Value>, DecodeError> {
        let len = self.len()?;
        let mut map = Map::new();
        for _ in 0..len {
            let key = self.str()?;
            let value = self.value(depth)?;
            map.insert(key, value);
        }
        Ok(map)
    }

    fn state(&mut self) -> Result<State, DecodeError> {
        Ok(match self.u8()? {
            0 => State::Pending,
            1 => State::Ready,
            2 => State::Running,
            3 => State::Failed,
            4 => State::Succeed,
            other => return Err(corrupt(format!("bad state {other}"))),
        })
    }

    fn operator(&mut self) -> Result<Operator, DecodeError> {
        Ok(match self.u8()? {
            0 => Operator::Run,
            1 => Operator::Retry,
            2 => Operator::Rollback,
            3 => Operator::Cancel,
            4 => Operator::Pass,
            other => return Err(corrupt(format!("bad operator {other}"))),
        })
    }

    fn flags(&mut self) -> Result<Flags, DecodeError> {
        let byte = self.u8()?;
        if byte >> 5 != 0 {
            return Err(corrupt(format!("bad flags {byte:#x}")));
        }
        let bit = |n: u8| byte & (1 << n) != 0;
        Ok(Flags {
            can_retry: bit(0),
            can_rollback: bit(1),
            can_cancel: bit(2),
            can_pass: bit(3),
            can_continue: bit(4),
        })
    }
}

/// Kinds and bodies of the model's composite fields, shared by the record layouts.
impl Writer {
    fn scope(&mut self, scope: Scope) {
        self.u8(match scope {
            Scope::Agent => 0,
            Scope::Cluster => 1,
        });
    }

    fn maintenance(&mut self, maintenance: &Maintenance) {
        match maintenance {
            Maintenance::None => self.u8(0),
            Maintenance::Global => self.u8(1),
            Maintenance::Tenant(name) => {
                self.u8(2);
                self.str(name);
            }
        }
    }

    fn pools(&mut self, pools: &BTreeMap<String, u32>) {
        self.len(pools.len());
        for (name, size) in pools {
            self.str(name);
            self.u32(*size);
        }
    }

    fn fan_out(&mut self, fan_out: &FanOut) {
        match fan_out {
            FanOut::Static(params) => {
                self.u8(0);
                self.len(params.len());
                for param in params.iter() {
                    self.value(param);
                }
            }
            FanOut::Dynamic(key) => {
                self.u8(1);
                self.str(key);
            }
        }
    }

    fn retry(&mut self, retry: Option<&RetryPolicy>) {
        self.bool(retry.is_some());
        if let Some(retry) = retry {
            self.u32(retry.attempts);
            self.u64(retry.initial_backoff_ms);
            self.u32(retry.multiplier);
            self.u64(retry.max_backoff_ms);
        }
    }
}

impl Reader<'_> {
    fn scope(&mut self) -> Result<Scope, DecodeError> {
        match self.u8()? {
            0 => Ok(Scope::Agent),
            1 => Ok(Scope::Cluster),
            other => Err(corrupt(format!("bad scope {other}"))),
        }
    }

    fn maintenance(&mut self) -> Result<Maintenance, DecodeError> {
        match self.u8()? {
            0 => Ok(Maintenance::None),
            1 => Ok(Maintenance::Global),
            2 => Ok(Maintenance::Tenant(self.str()?)),
            other => Err(corrupt(format!("bad maintenance {other}"))),
        }
    }

    fn pools(&mut self) -> Result<BTreeMap<String, u32>, DecodeError> {
        let len = self.len()?;
        let mut pools = BTreeMap::new();
        for _ in 0..len {
            let name = self.str()?;
            pools.insert(name, self.u32()?);
        }
        Ok(pools)
    }

    fn fan_out(&mut self) -> Result<FanOut, DecodeError> {
        match self.u8()? {
            0 => Ok(FanOut::Static(
                self.values(0)?.into_iter().map(Arc::new).collect(),
            )),
            1 => Ok(FanOut::Dynamic(self.str()?)),
            other => Err(corrupt(format!("bad fan-out {other}"))),
        }
    }

    fn retry(&mut self) -> Result<Option<RetryPolicy>, DecodeError> {
        if !self.bool()? {
            return Ok(None);
        }
        Ok(Some(RetryPolicy {
            attempts: self.u32()?,
            initial_backoff_ms: self.u64()?,
            multiplier: self.u32()?,
            max_backoff_ms: self.u64()?,
        }))
    }
}

impl Codec for DagRecord {
    const KIND: u8 = 1;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.id);
        out.str(&self.name);
        out.scope(self.scope);
        out.state(self.state);
        out.operator(self.operator);
        out.u32(self.stage);
        out.u32(self.max_stage);
        out.maintenance(&self.maintenance);
        out.bool(self.lock_held);
        out.value(&self.params);
        out.pools(&self.pools);
        out.ids(&self.node_ids);
        out.time(self.create_time);
        out.opt_time(self.start_time);
        out.opt_time(self.end_time);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<DagRecord, DecodeError> {
        Ok(DagRecord {
            v: RECORD_VERSION,
            id: input.u64()?,
            name: input.str()?,
            scope: input.scope()?,
            state: input.state()?,
            operator: input.operator()?,
            stage: input.u32()?,
            max_stage: input.u32()?,
            maintenance: input.maintenance()?,
            lock_held: input.bool()?,
            params: input.value(0)?,
            pools: input.pools()?,
            node_ids: input.ids()?.into(),
            create_time: input.time()?,
            start_time: input.opt_time()?,
            end_time: input.opt_time()?,
        })
    }
}

impl Codec for NodeRecord {
    const KIND: u8 = 2;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.id);
        out.u64(self.dag_id);
        out.str(&self.name);
        out.str(&self.task_type);
        out.u32(self.layer);
        out.ids(&self.upstream);
        out.ids(&self.downstream);
        out.state(self.state);
        out.operator(self.operator);
        out.fan_out(&self.fan_out);
        out.bool(self.expanded);
        out.ids(&self.task_ids);
        out.bool(self.pool.is_some());
        if let Some(pool) = &self.pool {
            out.str(pool);
        }
        out.u64(self.timeout_ms);
        out.retry(self.retry.as_ref());
        out.bool(self.flags.is_some());
        if let Some(flags) = self.flags {
            out.flags(flags);
        }
        out.bool(self.failure_exit_maintenance);
        out.time(self.create_time);
        out.opt_time(self.start_time);
        out.opt_time(self.end_time);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<NodeRecord, DecodeError> {
        Ok(NodeRecord {
            v: RECORD_VERSION,
            id: input.u64()?,
            dag_id: input.u64()?,
            name: input.str()?.into(),
            task_type: input.str()?.into(),
            layer: input.u32()?,
            upstream: input.ids()?.into(),
            downstream: input.ids()?.into(),
            state: input.state()?,
            operator: input.operator()?,
            fan_out: input.fan_out()?,
            expanded: input.bool()?,
            task_ids: input.ids()?,
            pool: if input.bool()? {
                Some(input.str()?)
            } else {
                None
            },
            timeout_ms: input.u64()?,
            retry: input.retry()?,
            flags: if input.bool()? {
                Some(input.flags()?)
            } else {
                None
            },
            failure_exit_maintenance: input.bool()?,
            create_time: input.time()?,
            start_time: input.opt_time()?,
            end_time: input.opt_time()?,
        })
    }
}

impl Codec for TaskRecord {
    const KIND: u8 = 3;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.id);
        out.u64(self.dag_id);
        out.u64(self.node_id);
        out.u32(self.index);
        out.str(&self.name);
        out.str(&self.task_type);
        out.value(&self.params);
        out.flags(self.flags);
        out.state(self.state);
        out.operator(self.operator);
        out.u32(self.execute_times);
        out.u32(self.auto_retries);
        out.bool(self.rollback_before_retry);
        out.bool(self.ran);
        out.map(&self.local);
        out.map(&self.output);
        out.map(&self.additional_data);
        out.u64(self.log_count);
        out.time(self.create_time);
        out.opt_time(self.start_time);
        out.opt_time(self.end_time);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<TaskRecord, DecodeError> {
        Ok(TaskRecord {
            v: RECORD_VERSION,
            id: input.u64()?,
            dag_id: input.u64()?,
            node_id: input.u64()?,
            index: input.u32()?,
            name: input.str()?.into(),
            task_type: input.str()?.into(),
            params: Arc::new(input.value(0)?),
            flags: input.flags()?,
            state: input.state()?,
            operator: input.operator()?,
            execute_times: input.u32()?,
            auto_retries: input.u32()?,
            rollback_before_retry: input.bool()?,
            ran: input.bool()?,
            local: input.map(1)?,
            output: input.map(1)?,
            additional_data: input.map(1)?,
            log_count: input.u64()?,
            create_time: input.time()?,
            start_time: input.opt_time()?,
            end_time: input.opt_time()?,
        })
    }
}

impl Codec for LogRecord {
    const KIND: u8 = 4;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.task_id);
        out.u32(self.execute_times);
        out.time(self.time);
        out.str(&self.content);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<LogRecord, DecodeError> {
        Ok(LogRecord {
            v: RECORD_VERSION,
            task_id: input.u64()?,
            execute_times: input.u32()?,
            time: input.time()?,
            content: input.str()?,
        })
    }
}

impl Codec for LockRecord {
    const KIND: u8 = 5;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.dag_id);
        out.bool(self.held);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<LockRecord, DecodeError> {
        Ok(LockRecord {
            v: RECORD_VERSION,
            dag_id: input.u64()?,
            held: input.bool()?,
        })
    }
}

impl Codec for Counters {
    const KIND: u8 = 6;

    fn write_body(&self, out: &mut Writer) {
        out.u64(self.next_dag);
        out.u64(self.next_node);
        out.u64(self.next_task);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Counters, DecodeError> {
        Ok(Counters {
            v: RECORD_VERSION,
            next_dag: input.u64()?,
            next_node: input.u64()?,
            next_task: input.u64()?,
        })
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
