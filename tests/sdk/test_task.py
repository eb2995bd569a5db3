"""Task API: DAG, node and sub-task details, logs, operator refusals, listings and
maintenance DAGs (obshell: ob/agent/executor/task, ob/agent/api/task_handler.go)."""

import pytest

from sdkutil import (check_envelope, describe_dag, expect_error, node_named, raw)


def test_get_dag_with_and_without_details(client, restored):
    gid = restored.dag.generic_id
    dag = client.get_dag(gid, show_detail=True)  # the SDK sends show_details=True
    assert dag.generic_id == gid and dag.state == "SUCCEED"
    assert len(dag.nodes) >= 10, describe_dag(dag)
    brief = client.get_dag(gid, show_detail=False)
    assert brief.generic_id == gid and brief.state == "SUCCEED"
    assert brief.nodes == []
    answer = raw(client, "GET", f"/api/v1/task/dag/{gid}", query={"show_details": False})
    check_envelope(answer, 200)
    assert answer.data.get("nodes") is None, "without details, nodes is null on the wire"


@pytest.mark.parametrize("value,detailed", [
    ("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True), ("True", True),
    ("0", False), ("f", False), ("F", False), ("FALSE", False), ("false", False),
    ("False", False),
])
def test_show_details_is_parsed_like_go_parsebool(client, restored, value, detailed):
    answer = raw(client, "GET", f"/api/v1/task/dag/{restored.dag.generic_id}",
                 query={"show_details": value})
    check_envelope(answer, 200)
    nodes = answer.data.get("nodes")
    if detailed:
        assert isinstance(nodes, list) and nodes, f"show_details={value}: {answer}"
    else:
        assert nodes is None, f"show_details={value}: {answer}"


def test_get_dag_refuses_malformed_and_unknown_ids(client):
    expect_error(lambda: client.get_dag("abc"), "Task.GenericID.Invalid", 400, client)
    expect_error(lambda: client.get_dag("1999999"), "Task.NotFound", 404, client)


def test_node_and_sub_task_details(client, agent, restored):
    dag = client.get_dag(restored.dag.generic_id)
    post = node_named(dag, "Post check")
    node = client.get_node(post.generic_id)
    assert node.generic_id == post.generic_id and node.name == "Post check"
    assert node.generic_id.startswith("1"), node.generic_id
    assert (node.state, node.operator) == ("SUCCEED", "RUN")
    assert node.sub_tasks, "Post check has a sub-task"
    # NodeDetailDTO.additional_data is a 1-tuple in the SDK (trailing comma): not checked.
    sub = client.get_sub_task(node.sub_tasks[0].generic_id)
    assert sub.generic_id == node.sub_tasks[0].generic_id
    assert sub.generic_id.startswith("1"), sub.generic_id
    assert (sub.state, sub.operator) == ("SUCCEED", "RUN")
    assert isinstance(sub.execute_times, int) and sub.execute_times >= 1
    assert sub.execute_agent == f"127.0.0.1:{agent.executor_port}"
    assert isinstance(sub.task_logs, list) and sub.task_logs, "Post check logs what it checked"
    assert all(isinstance(line, str) and line for line in sub.task_logs), sub.task_logs


def test_sub_task_logs_route(client, restored):
    dag = client.get_dag(restored.dag.generic_id)
    sub = node_named(dag, "Post check").sub_tasks[0]
    answer = raw(client, "GET", f"/api/v1/task/sub_task/{sub.generic_id}/logs")
    check_envelope(answer, 200)
    rows = answer.data["contents"]
    assert rows, answer
    keys = {"id", "sub_task_id", "execute_times", "log_content", "is_sync", "create_time",
            "update_time"}
    for row in rows:
        assert keys <= row.keys(), f"log row lacks {sorted(keys - row.keys())}: {row}"
        assert row["sub_task_id"] == sub.task_id, row
        assert row["execute_times"] >= 1 and isinstance(row["is_sync"], bool), row
    contents = [r["log_content"] for r in rows]
    for line in sub.task_logs:
        assert any(line in c or c in line for c in contents), (line, contents)


@pytest.mark.parametrize("operator,err_code", [
    ("CANCEL", "Task.Dag.Operator.CancelFinishedDag"),
    ("ROLLBACK", "Task.Dag.Operator.RollbackNotFailedDag"),
    ("RETRY", "Task.Dag.Operator.RetryNotFailedDag"),
    ("PASS", "Task.Dag.Operator.PassNotFailedDag"),
    ("FOO", "Task.Dag.Operator.NotSupport"),
])
def test_operator_on_a_succeeded_dag_is_refused(client, restored, operator, err_code):
    gid = restored.dag.generic_id
    expect_error(lambda: client.operate_dag(gid, operator), err_code, 400, client)
    after = client.get_dag(gid)
    assert (after.state, after.operator) == ("SUCCEED", "RUN"), describe_dag(after)


@pytest.mark.parametrize("operator,err_code", [
    ("PASS", "Task.Node.Operator.PassNotFailedDag"),
    ("RETRY", "Task.Node.Operator.NotSupport"),
])
def test_node_operator_on_a_succeeded_dag_is_refused(client, restored, operator, err_code):
    node = node_named(client.get_dag(restored.dag.generic_id), "Activate tenant")
    answer = raw(client, "POST", f"/api/v1/task/node/{node.generic_id}",
                 data={"operator": operator})
    check_envelope(answer, 400, err_code)


def test_dag_listings(client, restored):
    ob = raw(client, "GET", "/api/v1/task/dags/ob")
    check_envelope(ob, 200)
    ids = [d["id"] for d in ob.data["contents"]]
    assert restored.dag.generic_id in ids, ids
    assert all(i.startswith("1") for i in ids), f"cluster DAG ids start with 1: {ids}"
    agent_dags = raw(client, "GET", "/api/v1/task/dags/agent")
    check_envelope(agent_dags, 200)
    assert isinstance(agent_dags.data["contents"], list), agent_dags
    assert all(d["id"].startswith("2") for d in agent_dags.data["contents"]), agent_dags
    main = raw(client, "GET", "/api/v1/task/dag/agent/main_dags")
    check_envelope(main, 200)
    assert main.data["contents"] == [], main


def test_maintenance_dags(client, restored):
    answer = raw(client, "GET", "/api/v1/task/dag/maintain/ob")
    check_envelope(answer, 200)
    last = answer.data
    assert last["id"].startswith("1") and last["maintenance_type"] == 3, last
    listed = raw(client, "GET", "/api/v1/task/dags/ob").data["contents"]
    newest = max(listed, key=lambda d: d["dag_id"])
    assert last["id"] == newest["id"], f"maintain/ob {last['id']} is not the newest {newest}"
    # SDK bug: get_ob_last_maintenance_dag parses the single DTO as `contents`, so it
    # always returns [] (also against obshell).
    assert client.get_ob_last_maintenance_dag() == []
    # No agent-local maintenance DAG here.
    expect_error(lambda: client.get_agent_last_maintenance_dag(), "Task.NotFound", 404, client)
    check_envelope(raw(client, "GET", "/api/v1/task/dag/maintain/agent"), 404, "Task.NotFound")
    assert client.get_all_agent_last_maintenance_dag() == []


def test_a_succeeded_dag_is_not_unfinished(client, restored):
    gid = restored.dag.generic_id
    for listing in (client.get_unfinished_dags, client.get_cluster_unfinished_dag,
                    client.get_agent_unfinished_dag):
        dags = listing()
        assert isinstance(dags, list)
        assert gid not in [d.generic_id for d in dags], (listing.__name__, gid)
