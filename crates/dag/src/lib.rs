//! obrestore-dag: a persistent async task-DAG engine with obshell's semantics.
//!
//! A DAG is a graph of nodes; a node runs 1..N sub-tasks of one registered task type.
//! The engine schedules them on tokio under a global worker limit and per-DAG resource
//! pools, applies obshell's operators (RUN, RETRY, ROLLBACK, CANCEL, PASS) as
//! compare-and-set transitions, and persists every transition durably before anyone can
//! observe it. It knows nothing of OceanBase.

pub mod clock;
pub mod crash_point;
pub mod dto;
pub mod engine;
pub mod error;
pub mod event;
pub mod id;
pub mod model;
pub mod record;
pub mod store;
pub mod task;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dto::{DagDetailDto, NodeDetailDto, TaskDetailDto, TaskLogDto};
pub use engine::{AgentInfo, Engine, EngineConfig};
pub use error::{LockConflict, OpenError, OperateError, QueryError, Refusal, SubmitError};
pub use event::{Event, Subject};
pub use id::{GenericId, IdOrigin, InvalidGenericId};
pub use model::{
    DagSpec, Flags, Maintenance, NodeIndex, NodeSpec, Operator, RetryPolicy, Scope, State,
};
pub use store::{KvStore, MemStore, SledStore, StoreError};
pub use task::{SyncTask, Task, TaskContext, TaskError, TaskRegistry};
