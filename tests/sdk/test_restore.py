"""Restore through the SDK: the reference restore and its digest, the overview, windows,
listings, parameter validation, binding, conflicts and the restore list routes."""

import re
import threading

import pytest
from sdkutil import (MAIN_TENANT, RESTORE_LAYERS, check_envelope, describe_dag,
                     drop_tenant_quietly, expect_error, layer_of, raw, restore_body,
                     rfc3339_to_ns, wait_dag, zone)


def test_restore_sync_ends_succeed_with_the_oracle_digest(restored):
    dag = restored.dag
    assert dag.state == "SUCCEED" and dag.operator == "RUN", describe_dag(dag)
    assert dag.generic_id.startswith("1"), f"a restore is a cluster DAG: {dag.generic_id}"
    assert dag.name == f"Restore backup_{MAIN_TENANT}"
    assert dag.max_stage == len(RESTORE_LAYERS) == 10
    assert dag.stage == dag.max_stage
    extra = dag.additional_data or {}
    assert isinstance(extra.get("restore_job_id"), int), extra
    assert extra.get("tenant_digest") == {"rows": restored.expected.rows,
                                          "sha256": restored.expected.sha256}, (
        f"restored rows differ from the truth at scn {restored.scn}: agent "
        f"{extra.get('tenant_digest')}, oracle {restored.expected}")
    assert restored.expected.rows > 0


def test_restore_dag_runs_the_ten_layers_per_log_stream(client, restored, backup):
    dag = client.get_dag(restored.dag.generic_id, show_detail=True)
    names = [n.name for n in dag.nodes]
    assert sorted({layer_of(n) for n in names}) == list(range(10)), names
    for ls in backup.user_ls:
        for layer in ("Restore tablets meta", "Restore data", "Replay log"):
            assert f"{layer} {ls}" in names, f"{layer} {ls} missing: {names}"
    assert len(names) == 7 + 3 * len(backup.user_ls), names
    for node in dag.nodes:
        assert (node.state, node.operator) == ("SUCCEED", "RUN"), describe_dag(dag)
        assert node.sub_tasks, f"node {node.name} has no sub-task"
    # Layer by layer: a node starts only after the nodes it depends on have ended.
    span = {n.name: (rfc3339_to_ns(n.start_time), rfc3339_to_ns(n.end_time))
            for n in dag.nodes}
    chains = [RESTORE_LAYERS[:4]]
    chains += [["Restore sys tablets", f"Restore tablets meta {ls}", f"Restore data {ls}",
                f"Replay log {ls}", "Post check"] for ls in backup.user_ls]
    chains.append(RESTORE_LAYERS[7:])
    for chain in chains:
        for before, after in zip(chain, chain[1:]):
            assert span[before][1] <= span[after][0], \
                f"{after!r} started before {before!r} ended:\n{describe_dag(dag)}"
    raw_dag = raw(client, "GET", f"/api/v1/task/dag/{dag.generic_id}",
                  query={"show_details": False})
    check_envelope(raw_dag, 200)
    assert raw_dag.data["maintenance_type"] == 3, "3 = TENANT maintenance"
    assert raw_dag.data["maintenance_key"] == MAIN_TENANT


def test_restore_overview_describes_the_finished_job(client, restored, backup):
    ov = client.get_tenant_restore_overview(MAIN_TENANT)
    assert ov.job_id == restored.dag.additional_data["restore_job_id"]
    assert ov.restore_tenant_name == MAIN_TENANT
    info = client.get_tenant_info(MAIN_TENANT)
    assert ov.restore_tenant_id == info.id
    assert ov.backup_tenant_name == backup.source_tenant
    assert ov.backup_tenant_id == 1002
    assert ov.backup_cluster_name == backup.source_cluster
    assert ov.restore_scn == restored.scn
    assert isinstance(ov.restore_scn_display, str) and ov.restore_scn_display
    assert ov.status == "SUCCESS"
    assert "backup_set_1" in str(ov.backup_set_list), ov.backup_set_list
    assert "piece" in str(ov.backup_piece_list), ov.backup_piece_list
    assert ov.tablet_count == ov.finish_tablet_count and ov.tablet_count > 0, str(ov)
    assert ov.total_bytes == ov.finish_bytes and ov.total_bytes > 0, str(ov)
    assert ov.ls_count == ov.finish_ls_count and ov.ls_count >= len(backup.user_ls), str(ov)
    for progress in (ov.recover_progress, ov.restore_progress):
        assert isinstance(progress, str) and float(progress) == 100.0, str(ov)
    assert ov.start_timestamp and ov.finish_timestamp, str(ov)
    assert ov.backup_cluster_version not in (None, "", 0), str(ov)
    # Not in the SDK model: read on the wire.
    answer = raw(client, "GET", f"/api/v1/tenant/{MAIN_TENANT}/restore/overview")
    check_envelope(answer, 200)
    assert answer.data["backup_data_uri"] == backup.data_uri, answer
    assert answer.data["backup_log_uri"] == backup.archive_uri, answer


def test_restore_overview_of_unknown_tenant_is_refused(client):
    expect_error(lambda: client.get_tenant_restore_overview("sdk_never_was"),
                 "OB.Tenant.NotExist", 400, client)


def test_restore_windows_match_the_backup(client, backup, restored):
    windows = list(client.get_restore_windows(backup.data_uri, backup.archive_uri))
    assert windows, "no restore window"
    spans = [(rfc3339_to_ns(w.start_time), rfc3339_to_ns(w.end_time)) for w in windows]
    for start, end in spans:
        assert start < end, spans
    assert spans == backup.windows, f"SDK windows {spans} != `restore windows` {backup.windows}"
    assert any(s <= restored.scn <= e for s, e in spans)


def test_restored_tenant_is_listed_with_its_pools(client, restored):
    tenants = {t.name: t for t in client.get_all_tenants()}
    assert MAIN_TENANT in tenants, sorted(tenants)
    t = tenants[MAIN_TENANT]
    assert (t.status, t.locked, t.in_recyclebin) == ("NORMAL", "NO", "NO"), str(t)
    assert t.mode == "MYSQL", str(t)
    info = client.get_tenant_info(MAIN_TENANT)
    assert info.name == MAIN_TENANT and info.status == "NORMAL"
    assert len(info.pools) == 1, [str(p) for p in info.pools]
    pool = info.pools[0]
    assert pool.name.startswith(f"{MAIN_TENANT}_"), pool.name
    assert isinstance(pool.id, int)
    assert pool.zone_list == "z1" and pool.unit_num == 1, str(pool)
    unit = pool.unit
    assert unit.name == "s1" and unit.max_cpu == 2.0 and unit.memory_size == 4 << 30, str(unit)
    pools = {p.name: p for p in client.get_all_resource_pools()}
    assert pool.name in pools and pools[pool.name].tenant_id == info.id, sorted(pools)


# --------------------------------------------------------------------------------------
# Validation (obshell's order: api/restore_route.go, param/restore.go, executor/zone)
# --------------------------------------------------------------------------------------

REFUSALS = [
    ("sys", {"tenant": "sys"}, "OB.Tenant.SysOperationNotAllowed"),
    ("existing tenant", {"tenant": MAIN_TENANT}, "OB.Tenant.Existed"),
    ("empty zone list", {"zone_list": []}, "OB.Tenant.ZoneList.Empty"),
    ("timestamp and scn", {"timestamp": "2024-04-02T00:00:00Z", "scn": "window"},
     "Common.IllegalArgument"),
    ("ha_high_thread_score 101", {"ha_high_thread_score": 101}, "Common.IllegalArgument"),
    ("repeated zone", {"zone_list": [zone("z1"), zone("z1")]}, "OB.Tenant.Zone.Repeated"),
    ("unit_num 0", {"zone_list": [zone("z1", "s1", 0)]}, "OB.Tenant.UnitNum.Invalid"),
    ("empty unit config name", {"zone_list": [zone("z1", "")]},
     "OB.Resource.UnitConfig.Name.Empty"),
    ("unknown replica type", {"zone_list": [zone("z1", "s1", 1, "FOO")]},
     "OB.Tenant.Replica.InvalidType"),
    ("unit_num differs between zones", {"zone_list": [zone("z1"), zone("z2", "s1", 2)]},
     "OB.Tenant.UnitNum.Inconsistent"),
    ("zone 1 fully checked before zone 2", {"zone_list": [zone("z1", "s1", 0), zone("z1")]},
     "OB.Tenant.UnitNum.Invalid"),
    ("unit_num above the zone's servers", {"zone_list": [zone("z1", "s1", 2)]},
     "OB.Tenant.UnitNum.ExceedsLimit"),
    ("unknown zone", {"zone_list": [zone("z9")]}, "OB.Zone.NotExist"),
    ("unknown unit config", {"zone_list": [zone("z1", "sdk_no_such_unit")]},
     "OB.Resource.UnitConfig.NotExist"),
    ("only READONLY replicas", {"zone_list": [zone("z1", "s1", 1, "READONLY")]},
     "OB.Tenant.NoPaxosReplica"),
    ("primary zone outside the zone list", {"primary_zone": "z2"},
     "OB.Tenant.PrimaryZone.Invalid"),
    ("empty data_backup_uri", {"data_backup_uri": ""}, "Common.BindJsonFailed"),
]


@pytest.mark.parametrize("case,change,err_code", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_restore_parameter_is_refused(request, client, backup, case, change, err_code):
    # One tenant name per case: a wrongly accepted restore cannot disturb the others.
    tenant = change.get("tenant", "sdk_r_" + re.sub(r"\W", "_", case))
    if tenant == MAIN_TENANT:
        request.getfixturevalue("restored")  # the existing tenant
    kwargs = dict(archive_log_uri=backup.archive_uri, scn=backup.scn_at(0.5))
    kwargs.update({k: v for k, v in change.items()
                   if k not in ("tenant", "zone_list", "data_backup_uri")})
    if kwargs.get("scn") == "window":
        kwargs["scn"] = backup.scn_at(0.5)
    zones = change.get("zone_list", [zone("z1")])
    data_uri = change.get("data_backup_uri", backup.data_uri)
    call = lambda: client.post_tenant_restore(data_uri, tenant, zones, **kwargs)  # noqa: E731
    try:
        expect_error(call, err_code, 400, client)
    except AssertionError:
        if tenant not in ("sys", MAIN_TENANT):
            drop_tenant_quietly(client, tenant)  # a wrongly accepted restore: clean up
        raise


@pytest.mark.parametrize("case,body_change", [
    ("zone_list null", {"zone_list": None}),
    ("zone_list missing", {"zone_list": "<drop>"}),
    ("restore_tenant_name empty", {"restore_tenant_name": ""}),
], ids=["zone_list null", "zone_list missing", "restore_tenant_name empty"])
def test_restore_body_binding_is_refused(client, backup, case, body_change):
    body = restore_body(backup, "sdk_unbound", scn=backup.scn_at(0.5))
    for key, value in body_change.items():
        if value == "<drop>":
            del body[key]
        else:
            body[key] = value
    answer = raw(client, "POST", "/api/v1/tenant/restore", data=body)
    check_envelope(answer, 400, "Common.BindJsonFailed")


def test_json_field_names_are_case_insensitive(client, backup):
    tenant = "sdk_case"
    body = restore_body(backup, tenant, scn=backup.scn_at(0.5), zone_name="z3")
    body["Restore_Tenant_Name"] = body.pop("restore_tenant_name")
    zones = body.pop("zone_list")
    zones[0]["Unit_Config_Name"] = zones[0].pop("unit_config_name")
    body["ZONE_LIST"] = zones
    try:
        answer = raw(client, "POST", "/api/v1/tenant/restore", data=body)
        check_envelope(answer, 200)
        assert answer.data["name"] == f"Restore backup_{tenant}", answer
        assert answer.data["id"].startswith("1"), answer
        dag = wait_dag(client, answer.data["id"])
        assert dag.state == "SUCCEED", describe_dag(dag)
        info = client.get_tenant_info(tenant)
        assert info.pools[0].zone_list == "z3" and info.pools[0].unit.name == "s1"
    finally:
        drop_tenant_quietly(client, tenant)


def test_concurrent_restore_of_one_tenant_conflicts(client, backup):
    """Two restores of one tenant at once: the second finds the first's maintenance lock
    (409 OB.Tenant.UnderMaintenance; obshell itself answers 500 there)."""
    tenant = "sdk_twice"
    body = restore_body(backup, tenant, scn=backup.scn_at(0.5), zone_name="z2")
    raw(client, "GET", "/api/v1/units/config")  # auth warmed up: both requests leave together
    barrier = threading.Barrier(2)
    answers = [None, None]

    def fire(i):
        barrier.wait()
        answers[i] = raw(client, "POST", "/api/v1/tenant/restore", data=body, once=True)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        statuses = sorted(a.status for a in answers)
        winner = next((a for a in answers if a.status == 200), None)
        loser = next((a for a in answers if a.status != 200), None)
        assert winner is not None and loser is not None, [str(a) for a in answers]
        if loser.err_code == "OB.Tenant.Existed":
            pytest.skip("the first restore created the tenant before the second arrived")
        check_envelope(loser, 409, "OB.Tenant.UnderMaintenance")
        assert statuses == [200, 409]
        dag = wait_dag(client, winner.data["id"])
        assert dag.state == "SUCCEED", describe_dag(dag)
    finally:
        drop_tenant_quietly(client, tenant)


# --------------------------------------------------------------------------------------
# Restore list routes (no SDK method)
# --------------------------------------------------------------------------------------


def test_restore_tasks_lists_finished_restores(client, restored):
    answer = raw(client, "GET", "/api/v1/restore/tasks")
    check_envelope(answer, 200)
    data = answer.data
    assert isinstance(data.get("contents"), list) and isinstance(data.get("page"), dict), data
    mine = [t for t in data["contents"] if t.get("restore_tenant_name") == MAIN_TENANT]
    assert mine, f"{MAIN_TENANT}'s restore is not listed: {data}"
    assert mine[0]["status"] == "SUCCESS"
    assert mine[0]["job_id"] == restored.dag.additional_data["restore_job_id"]
    assert mine[0]["restore_scn"] == restored.scn


def test_source_tenant_info_reads_the_backup(client, backup):
    answer = raw(client, "POST", "/api/v1/restore/source-tenant-info",
                 data={"data_backup_uri": backup.data_uri,
                       "archive_log_uri": backup.archive_uri})
    check_envelope(answer, 200)
    data = answer.data
    assert data["tenant_name"] == backup.source_tenant, data
    assert data["cluster_name"] == backup.source_cluster, data
    windows = data["restore_windows"]["restore_windows"]
    spans = [(rfc3339_to_ns(w["start_time"]), rfc3339_to_ns(w["end_time"])) for w in windows]
    assert spans == backup.windows, data
