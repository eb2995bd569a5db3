//! The binary format round-trips every record, reads the JSON format, and turns any
//! other bytes into an error, never a panic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    // Microseconds from 1900 to 2200: what the format keeps.
    (-2_208_988_800_000_000i64..7_258_118_400_000_000)
        .prop_map(|micros| DateTime::from_timestamp_micros(micros).unwrap())
}

fn opt_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    proptest::option::of(time())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        proptest::num::f64::NORMAL.prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("[a-z_]{0,8}", value(), 0..4)
        .prop_map(|map| map.into_iter().collect())
}

fn ids() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(any::<u64>(), 0..8)
}

fn state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Pending),
        Just(State::Ready),
        Just(State::Running),
        Just(State::Failed),
        Just(State::Succeed),
    ]
}

fn operator() -> impl Strategy<Value = Operator> {
    prop_oneof![
        Just(Operator::Run),
        Just(Operator::Retry),
        Just(Operator::Rollback),
        Just(Operator::Cancel),
        Just(Operator::Pass),
    ]
}

fn flags() -> impl Strategy<Value = Flags> {
    any::<[bool; 5]>().prop_map(|bits| Flags {
        can_retry: bits[0],
        can_rollback: bits[1],
        can_cancel: bits[2],
        can_pass: bits[3],
        can_continue: bits[4],
    })
}

fn maintenance() -> impl Strategy<Value = Maintenance> {
    prop_oneof![
        Just(Maintenance::None),
        Just(Maintenance::Global),
        ".{0,10}".prop_map(Maintenance::Tenant),
    ]
}

fn retry() -> impl Strategy<Value = Option<RetryPolicy>> {
    proptest::option::of(
        (any::<u32>(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(
            |(attempts, initial_backoff_ms, multiplier, max_backoff_ms)| RetryPolicy {
                attempts,
                initial_backoff_ms,
                multiplier,
                max_backoff_ms,
            },
        ),
    )
}

fn dag() -> impl Strategy<Value = DagRecord> {
    (
        (any::<u64>(), ".{0,16}", any::<bool>(), state(), operator()),
        (
            any::<u32>(),
            any::<u32>(),
            maintenance(),
            any::<bool>(),
            value(),
        ),
        (
            proptest::collection::btree_map(".{0,6}", any::<u32>(), 0..3),
            ids(),
            time(),
            opt_time(),
            opt_time(),
        ),
    )
        .prop_map(
            |(
                (id, name, cluster, state, operator),
                (stage, max_stage, maintenance, lock_held, params),
                (pools, node_ids, create_time, start_time, end_time),
            )| DagRecord {
                v: RECORD_VERSION,
                id,
                name,
                scope: if cluster {
                    Scope::Cluster
                } else {
                    Scope::Agent
                },
                state,
                operator,
                stage,
                max_stage,
                maintenance,
                lock_held,
                params,
                pools,
                node_ids: node_ids.into(),
                create_time,
                start_time,
                end_time,
            },
        )
}

fn node() -> impl Strategy<Value = NodeRecord> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            ".{0,16}",
            ".{0,8}",
            any::<u32>(),
        ),
        (ids(), ids(), state(), operator(), any::<bool>()),
        (
            prop_oneof![
                proptest::collection::vec(value(), 0..4)
                    .prop_map(|params| FanOut::Static(params.into_iter().map(Arc::new).collect())),
                ".{0,8}".prop_map(FanOut::Dynamic),
            ],
            ids(),
            proptest::option::of(".{0,8}"),
            any::<u64>(),
            retry(),
        ),
        (
            proptest::option::of(flags()),
            any::<bool>(),
            time(),
            opt_time(),
            opt_time(),
        ),
    )
        .prop_map(
            |(
                (id, dag_id, name, task_type, layer),
                (upstream, downstream, state, operator, expanded),
                (fan_out, task_ids, pool, timeout_ms, retry),
                (flags, failure_exit_maintenance, create_time, start_time, end_time),
            )| NodeRecord {
                v: RECORD_VERSION,
                id,
                dag_id,
                name: name.into(),
                task_type: task_type.into(),
                layer,
                upstream: upstream.into(),
                downstream: downstream.into(),
                state,
                operator,
                fan_out,
                expanded,
                task_ids,
                pool,
                timeout_ms,
                retry,
                flags,
                failure_exit_maintenance,
                create_time,
                start_time,
                end_time,
            },
        )
}

fn task() -> impl Strategy<Value = TaskRecord> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            ".{0,12}",
            ".{0,8}",
        ),
        (
            value(),
            flags(),
            state(),
            operator(),
            any::<u32>(),
            any::<u32>(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            object(),
            object(),
            object(),
            any::<u64>(),
        ),
        (time(), opt_time(), opt_time()),
    )
        .prop_map(
            |(
                (id, dag_id, node_id, index, name, task_type),
                (params, flags, state, operator, execute_times, auto_retries),
                (rollback_before_retry, ran, local, output, additional_data, log_count),
                (create_time, start_time, end_time),
            )| TaskRecord {
                v: RECORD_VERSION,
                id,
                dag_id,
                node_id,
                index,
                name: name.into(),
                task_type: task_type.into(),
                params: params.into(),
                flags,
                state,
                operator,
                execute_times,
                auto_retries,
                rollback_before_retry,
                ran,
                local,
                output,
                additional_data,
                log_count,
                create_time,
                start_time,
                end_time,
            },
        )
}

fn round_trips<T: Codec + PartialEq + std::fmt::Debug + serde::Serialize>(record: &T) {
    let bytes = encode(record);
    assert_eq!(bytes[0], FORMAT_BINARY);
    assert_eq!(&decode::<T>(&bytes).unwrap(), record);
    // The JSON format this engine wrote before reads back as serde_json reads it
    // (serde_json's float parsing may change a float's last digit).
    let json = serde_json::to_vec(record).unwrap();
    let expected: T = serde_json::from_slice(&json).unwrap();
    assert_eq!(decode::<T>(&json).unwrap(), expected);
}

/// Decoding `bytes` as every kind of record returns, whatever the bytes.
fn decode_any(bytes: &[u8]) {
    let _ = decode::<DagRecord>(bytes);
    let _ = decode::<NodeRecord>(bytes);
    let _ = decode::<TaskRecord>(bytes);
    let _ = decode::<LogRecord>(bytes);
    let _ = decode::<LockRecord>(bytes);
    let _ = decode::<Counters>(bytes);
}

proptest! {
    #[test]
    fn dag_records_round_trip(record in dag()) {
        round_trips(&record);
    }

    #[test]
    fn node_records_round_trip(record in node()) {
        round_trips(&record);
    }

    #[test]
    fn task_records_round_trip(record in task()) {
        round_trips(&record);
    }

    #[test]
    fn small_records_round_trip(
        (task_id, execute_times, time, content) in (any::<u64>(), any::<u32>(), time(), ".{0,20}"),
        (dag_id, held) in (any::<u64>(), any::<bool>()),
        counters in any::<[u64; 3]>(),
    ) {
        round_trips(&LogRecord { v: RECORD_VERSION, task_id, execute_times, time, content });
        round_trips(&LockRecord { v: RECORD_VERSION, dag_id, held });
        round_trips(&Counters {
            v: RECORD_VERSION,
            next_dag: counters[0],
            next_node: counters[1],
            next_task: counters[2],
        });
    }

    /// Arbitrary bytes, in either format, are a record or an error.
    #[test]
    fn arbitrary_bytes_never_panic(
        kind in 0u8..8,
        body in proptest::collection::vec(any::<u8>(), 0..256),
        json in any::<bool>(),
    ) {
        let mut bytes = if json { vec![b'{'] } else { vec![FORMAT_BINARY, kind] };
        bytes.extend_from_slice(&body);
        decode_any(&bytes);
        decode_any(&body);
    }

    /// A real record cut short or with one byte changed is a record or an error.
    #[test]
    fn damaged_records_never_panic(
        record in task(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let bytes = encode(&record);
        decode_any(&bytes[..cut.index(bytes.len())]);
        let mut changed = bytes.clone();
        changed[flip.index(bytes.len())] = byte;
        decode_any(&changed);
    }
}

#[test]
fn bad_headers_are_errors() {
    assert!(matches!(
        decode::<DagRecord>(&[]),
        Err(DecodeError::Corrupt(_))
    ));
    assert_eq!(
        decode::<DagRecord>(&[7, 1]).unwrap_err(),
        DecodeError::UnsupportedVersion(7)
    );
    let lock = encode(&LockRecord {
        v: RECORD_VERSION,
        dag_id: 3,
        held: true,
    });
    assert!(matches!(
        decode::<Counters>(&lock),
        Err(DecodeError::Corrupt(reason)) if reason.contains("kind")
    ));
    let mut trailing = lock.clone();
    trailing.push(0);
    assert!(matches!(
        decode::<LockRecord>(&trailing),
        Err(DecodeError::Corrupt(reason)) if reason.contains("trailing")
    ));
    // A length beyond the record is refused before anything is allocated.
    let mut huge = vec![FORMAT_BINARY, LogRecord::KIND, 1, 1, 0];
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert!(matches!(
        decode::<LogRecord>(&huge),
        Err(DecodeError::Corrupt(reason)) if reason.contains("length")
    ));
}

#[test]
fn deeply_nested_values_are_errors_not_stack_overflows() {
    // A DAG record whose params open 100,000 arrays.
    let mut bytes = vec![FORMAT_BINARY, DagRecord::KIND, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[7, 1]);
    }
    assert!(matches!(
        decode::<DagRecord>(&bytes),
        Err(DecodeError::Corrupt(reason)) if reason.contains("deep")
    ));
    // What serde_json itself reads nests that deep round-trips.
    let mut deep = json!(1);
    for _ in 0..MAX_VALUE_DEPTH - 1 {
        deep = json!([deep]);
    }
    let mut dag = sample_dag();
    dag.params = deep;
    assert_eq!(decode::<DagRecord>(&encode(&dag)).unwrap(), dag);
}

fn sample_dag() -> DagRecord {
    DagRecord {
        v: RECORD_VERSION,
        id: 7,
        name: "Restore tenant t1".to_string(),
        scope: Scope::Cluster,
        state: State::Running,
        operator: Operator::Run,
        stage: 2,
        max_stage: 5,
        maintenance: Maintenance::Tenant("t1".to_string()),
        lock_held: true,
        params: json!({"tenant": "t1", "concurrency": 4}),
        pools: BTreeMap::from([("io".to_string(), 2)]),
        node_ids: vec![8, 9, 10].into(),
        create_time: DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
        start_time: DateTime::from_timestamp_micros(1_780_000_001_000_000),
        end_time: None,
    }
}

/// A DAG record exactly as format 1 (JSON, RFC 3339 timestamps) wrote it.
#[test]
fn json_records_of_format_one_are_read() {
    let json = br#"{"v":1,"id":7,"name":"Restore tenant t1","scope":"CLUSTER","state":"RUNNING","operator":"RUN","stage":2,"max_stage":5,"maintenance":{"Tenant":"t1"},"lock_held":true,"params":{"concurrency":4,"tenant":"t1"},"pools":{"io":2},"node_ids":[8,9,10],"create_time":"2026-05-28T20:26:40.123456Z","start_time":"2026-05-28T20:26:41Z","end_time":null}"#;
    assert_eq!(decode::<DagRecord>(json).unwrap(), sample_dag());
    // Records written before scopes existed are agent DAGs.
    let mut old: Value = serde_json::from_slice(json).unwrap();
    old.as_object_mut().unwrap().remove("scope");
    let old = decode::<DagRecord>(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(old.scope, Scope::Agent);
    // A JSON record of another version is refused.
    assert_eq!(
        decode::<LockRecord>(br#"{"v":9,"dag_id":1}"#).unwrap_err(),
        DecodeError::UnsupportedVersion(9)
    );
    assert!(decode::<LockRecord>(br#"{"v":1,"dag_id":1}"#).unwrap().held);
}

#[test]
fn binary_records_are_smaller_than_json() {
    let dag = sample_dag();
    let binary = encode(&dag).len();
    let json = serde_json::to_vec(&dag).unwrap().len();
    assert!(binary * 3 < json, "binary {binary} B, JSON {json} B");
}
