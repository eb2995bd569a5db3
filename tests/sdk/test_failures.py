"""Failed restores and the DAG operators on them: RETRY, node PASS, DAG PASS, CANCEL then
ROLLBACK, and cancelling a restore through DELETE /tenant/:name/restore.

A restore fails for real: one ``macro_block_data.*.obbak`` file of a user log stream of
the backup's only FULL set is renamed out of the way before it is submitted, so
``Restore data <ls>`` fails naming the file; it is put back before the operator."""

import pytest
from obshell import TaskExecuteFailedError

from sdkutil import (MAIN_TENANT, MissingFile, check_envelope, describe_dag,
                     drop_tenant_quietly, expect_error, is_finished, last_status,
                     macro_block_file, node_named, pool_names, raw, running_restore_data,
                     submit_restore, tenant_names, wait_dag)


def check_submitted(client, dto, tenant):
    """What post_tenant_restore returns: the restore DAG, a cluster DAG just created."""
    assert dto.generic_id.startswith("1"), f"a restore is a cluster DAG: {dto.generic_id}"
    assert dto.name == f"Restore backup_{tenant}"
    assert dto.state in ("READY", "RUNNING"), dto.state
    assert dto.operator == "RUN"
    wire = raw(client, "GET", f"/api/v1/task/dag/{dto.generic_id}",
               query={"show_details": False})
    check_envelope(wire, 200)
    assert wire.data["maintenance_type"] == 3 and wire.data["maintenance_key"] == tenant, wire


def fail_restore(client, backup, tenant, scn, zone_name):
    """Submits a restore with a data file missing; returns (DAG, failed node, file)."""
    ls = backup.user_ls[0]
    path = macro_block_file(backup, ls)
    with MissingFile(path):
        dto = submit_restore(client, backup, tenant, scn, zone_name)
        check_submitted(client, dto, tenant)
        dag = wait_dag(client, dto.generic_id, what="to fail in Restore data")
    assert dag.state == "FAILED", f"the restore should fail without {path}:\n{describe_dag(dag)}"
    failed = [n for n in dag.nodes if n.state == "FAILED"]
    assert [n.name for n in failed] == [f"Restore data {ls}"], describe_dag(dag)
    return dag, failed[0], path


def failed_sub_task(node):
    subs = [s for s in node.sub_tasks if s.state == "FAILED"]
    assert subs, f"node {node.name} has no failed sub-task"
    return subs[0]


def test_retry_after_the_missing_file_is_back(client, backup):
    tenant = "sdk_retry"
    scn = backup.scn_at(0.4)
    try:
        dag, node, path = fail_restore(client, backup, tenant, scn, "z2")
        gid = dag.generic_id
        sub = failed_sub_task(node)
        logs = sub.task_logs
        assert logs and "ERROR" in logs[-1], f"the last log is the error: {logs}"
        assert any(path.name in line for line in logs), f"no log names {path.name}: {logs}"
        ls = node.name.rsplit(" ", 1)[1]
        for later in (f"Replay log {ls}", "Post check", "Activate tenant", "Upgrade tenant"):
            assert node_named(dag, later).state != "SUCCEED", describe_dag(dag)

        # wait_dag_succeed gives up on a failed DAG, with the failed sub-task's last log.
        with pytest.raises(TaskExecuteFailedError) as failure:
            client.wait_dag_succeed(gid)
        assert failure.value.dag.state == "FAILED"
        assert logs[-1] in failure.value.message, failure.value.message

        unfinished = {d.generic_id: d for d in client.get_unfinished_dags()}
        assert gid in unfinished and unfinished[gid].state == "FAILED", sorted(unfinished)
        assert gid in [d.generic_id for d in client.get_cluster_unfinished_dag()]
        assert gid not in [d.generic_id for d in client.get_agent_unfinished_dag()]
        expect_error(lambda: client.operate_dag(gid, "CANCEL"),
                     "Task.Dag.Operator.CancelFinishedDag", 400, client)

        # The file is back (MissingFile restored it): RETRY resumes and succeeds.
        assert path.exists()
        assert client.operate_dag_sync(gid, "RETRY") is True
        done = client.get_dag(gid)
        assert (done.state, done.operator) == ("SUCCEED", "RUN"), describe_dag(done)
        expected = backup.workload.digest_at(scn)
        assert done.additional_data["tenant_digest"] == {
            "rows": expected.rows, "sha256": expected.sha256}, describe_dag(done)
        retried = [s for n in done.nodes if n.name == node.name for s in n.sub_tasks
                   if s.generic_id == sub.generic_id]
        assert retried and retried[0].execute_times >= 2, describe_dag(done)
        assert gid not in [d.generic_id for d in client.get_unfinished_dags()]
    finally:
        drop_tenant_quietly(client, tenant)


def test_pass_of_the_failed_node_continues_downstream(client, backup):
    tenant = "sdk_pass"
    try:
        dag, node, _ = fail_restore(client, backup, tenant, backup.scn_at(0.45), "z3")
        gid = dag.generic_id
        ls = node.name.rsplit(" ", 1)[1]
        ok_node = node_named(dag, "Pre restore check")
        refused = raw(client, "POST", f"/api/v1/task/node/{ok_node.generic_id}",
                      data={"operator": "PASS"})
        check_envelope(refused, 400, "Task.Node.Operator.PassNotFailedNode")

        passed = raw(client, "POST", f"/api/v1/task/node/{node.generic_id}",
                     data={"operator": "PASS"})
        check_envelope(passed, 200)
        done = wait_dag(client, gid, what="to finish after the node PASS")
        # obshell's PassNode sets the DAG operator back to RUN.
        assert (done.state, done.operator) == ("SUCCEED", "RUN"), describe_dag(done)
        again = next(n for n in done.nodes if n.generic_id == node.generic_id)
        assert (again.state, again.operator) == ("SUCCEED", "PASS"), describe_dag(done)
        for later in (f"Replay log {ls}", "Post check", "Activate tenant", "Upgrade tenant"):
            n = node_named(done, later)
            assert (n.state, n.operator) == ("SUCCEED", "RUN"), describe_dag(done)
        assert tenant in tenant_names(client)
    finally:
        drop_tenant_quietly(client, tenant)


def test_pass_of_a_failed_dag(client, backup):
    tenant = "sdk_dagpass"
    try:
        dag, _, _ = fail_restore(client, backup, tenant, backup.scn_at(0.35), "z2")
        gid = dag.generic_id
        # SDK bug: operate_dag_sync(id, "PASS") ends in dag.is_pass(), which the SDK's
        # DagDetailDTO does not have (AttributeError, against obshell too): use
        # operate_dag and poll.
        assert client.operate_dag(gid, "PASS") is True
        done = wait_dag(client, gid, what="to finish after the DAG PASS")
        assert (done.state, done.operator) == ("SUCCEED", "PASS"), describe_dag(done)
    finally:
        drop_tenant_quietly(client, tenant)


def wait_restore_data_running(client, gid):
    dag = wait_dag(client, gid, until=lambda d: running_restore_data(d) or is_finished(d),
                   timeout=60, what="to run Restore data")
    assert running_restore_data(dag), f"Restore data never seen running:\n{describe_dag(dag)}"
    return dag


def test_cancel_then_rollback_during_restore_data(slow_client, backup):
    client = slow_client
    tenant = "sdk_cancel"
    try:
        # Late SCN, one data worker: Restore data reads ~20 slowed blocks per log stream.
        dto = submit_restore(client, backup, tenant, backup.scn_at(0.9), "z1", concurrency=1)
        gid = dto.generic_id
        wait_restore_data_running(client, gid)
        assert client.operate_dag_sync(gid, "CANCEL") is True
        cancelled = client.get_dag(gid)
        assert (cancelled.state, cancelled.operator) == ("FAILED", "CANCEL"), \
            describe_dag(cancelled)
        expect_error(lambda: client.operate_dag(gid, "CANCEL"),
                     "Task.Dag.Operator.CancelFinishedDag", 400, client)
        assert client.operate_dag_sync(gid, "ROLLBACK") is True
        rolled = client.get_dag(gid)
        assert (rolled.state, rolled.operator) == ("SUCCEED", "ROLLBACK"), describe_dag(rolled)
        assert tenant not in tenant_names(client)
        leftovers = [p for p in pool_names(client) if p.startswith(f"{tenant}_")]
        assert leftovers == [], f"pools left after the rollback: {leftovers}"
    finally:
        drop_tenant_quietly(client, tenant)


def test_delete_tenant_restore_rolls_back_a_running_restore(slow_client, backup):
    client = slow_client
    tenant = "sdk_del"
    try:
        dto = submit_restore(client, backup, tenant, backup.scn_at(0.9), "z2", concurrency=1)
        wait_restore_data_running(client, dto.generic_id)
        dag = client.delete_tenant_restore_sync(tenant)
        assert dag is not None, "a running restore was there to cancel"
        assert dag.generic_id == dto.generic_id and dag.name == f"Restore backup_{tenant}"
        assert (dag.state, dag.operator) == ("SUCCEED", "ROLLBACK"), describe_dag(dag)
        assert tenant not in tenant_names(client)
        assert [p for p in pool_names(client) if p.startswith(f"{tenant}_")] == []
    finally:
        drop_tenant_quietly(client, tenant)


def test_delete_tenant_restore_refusals(client, restored):
    expect_error(lambda: client.delete_tenant_restore("sys"),
                 "OB.Tenant.SysOperationNotAllowed", 400, client)
    # The restored tenant's last maintenance DAG is its restore, whose job finished:
    # obshell's cmpDagAncCancelRestoreForJobNil answers AlreadySucceed (NotRecovering is
    # for a tenant that never had a maintenance DAG; crates/restore/tests covers it).
    expect_error(lambda: client.delete_tenant_restore(MAIN_TENANT),
                 "OB.Restore.Task.AlreadySucceed", 400, client)
    assert client.delete_tenant_restore("sdk_never_was") is None
    assert last_status(client) == 204
