"""Tenant administration through the SDK, asserted against obshell's Go semantics
(ob/agent/api/tenant_handler.go, api/tenant_utils.go, executor/tenant/*.go,
executor/zone/check.go) on the embedded cluster: zones z1, z2, z3 with one server each
(16 CPU, 64 GiB) and unit config s1 (2 CPU, 4 GiB).

Values obshell reads from OceanBase (variables, parameters) use OceanBase's own names:
``ob_query_timeout`` (a system variable), ``writing_throttling_trigger_percentage`` (a
tenant parameter) and ``ob_tcp_invited_nodes`` (the whitelist's variable)."""

import pytest
from obshell import OBShellHandleError
from obshell.model.tenant import ModifyReplicaParam

from sdkutil import (check_envelope, describe_dag, drop_tenant_quietly, expect_error,
                     last_status, raw, tenant_names, wait_dag, zone)

ADM = "sdk_adm"
ROOT_PASSWORD = "Root-Pw1"
ADM_UNIT = "sdk_adm_u"


def locality_map(locality: str) -> dict:
    """'FULL{1}@z1, READONLY@z2' -> {'z1': 'FULL', 'z2': 'READONLY'}."""
    out = {}
    for part in locality.split(","):
        part = part.strip()
        if not part:
            continue
        kind, _, zone_name = part.partition("@")
        out[zone_name.strip()] = kind.split("{")[0].strip()
    return out


def tenant(client, name):
    found = {t.name: t for t in client.get_all_tenants()}
    assert name in found, f"{name} not listed: {sorted(found)}"
    return found[name]


def tenant_pools(client, name):
    info = client.get_tenant_info(name)
    return {p.zone_list: p for p in info.pools}


@pytest.fixture(scope="module")
def adm(client):
    """sdk_adm on z1, z2, z3 (s1, one unit each) with a root password and a whitelist,
    created with create_tenant_sync."""
    try:
        dag = client.create_tenant_sync(ADM, [zone("z1"), zone("z2"), zone("z3")],
                                        root_password=ROOT_PASSWORD, whitelist="%")
        yield dag
    finally:
        drop_tenant_quietly(client, ADM)
        try:
            client.drop_resource_unit_config(ADM_UNIT)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def test_create_tenant_sync_builds_the_tenant(client, adm):
    assert adm.name == f"Create tenant {ADM}" and adm.state == "SUCCEED", describe_dag(adm)
    assert adm.generic_id.startswith("1")
    t = tenant(client, ADM)
    assert (t.status, t.locked, t.in_recyclebin, t.mode) == ("NORMAL", "NO", "NO", "MYSQL")
    assert t.primary_zone == "RANDOM"
    assert locality_map(t.locality) == {"z1": "FULL", "z2": "FULL", "z3": "FULL"}, t.locality
    info = client.get_tenant_info(ADM)
    assert info.white_list == "%,127.0.0.1", "obshell appends 127.0.0.1 (mergeWhitelist)"
    pools = {p.zone_list: p for p in info.pools}
    assert sorted(pools) == ["z1", "z2", "z3"], [str(p) for p in info.pools]
    for zone_name, pool in pools.items():
        assert pool.name.startswith(f"{ADM}_{zone_name}_"), pool.name  # name_zone_timestamp
        assert pool.unit_num == 1 and pool.unit.name == "s1"


def test_create_tenant_returns_its_dag_then_rename(client):
    name, new_name = "sdk_adm_new", "sdk_adm_renamed"
    try:
        dto = client.create_tenant(name, [zone("z2")])
        assert dto.name == f"Create tenant {name}" and dto.generic_id.startswith("1"), str(dto)
        assert dto.state in ("READY", "RUNNING"), dto.state
        wire = raw(client, "GET", f"/api/v1/task/dag/{dto.generic_id}",
                   query={"show_details": False})
        check_envelope(wire, 200)
        assert wire.data["maintenance_type"] == 3 and wire.data["maintenance_key"] == name
        done = wait_dag(client, dto.generic_id)
        assert done.state == "SUCCEED", describe_dag(done)
        t = tenant(client, name)
        assert t.primary_zone == "RANDOM" and locality_map(t.locality) == {"z2": "FULL"}
        assert client.get_tenant_info(name).white_list == "127.0.0.1", \
            "no whitelist given: obshell sets 127.0.0.1"

        # rename: a plain 200 (no DAG), so the SDK returns True.
        assert client.rename_tenant(name, new_name) is True
        names = tenant_names(client)
        assert new_name in names and name not in names, names
        expect_error(lambda: client.rename_tenant(new_name, "bad$name"),
                     "OB.Tenant.Name.Invalid", 400, client)
        expect_error(lambda: client.rename_tenant("sdk_never_was", "sdk_x"),
                     "OB.Tenant.NotExist", 400, client)
    finally:
        drop_tenant_quietly(client, name)
        drop_tenant_quietly(client, new_name)


CREATE_REFUSALS = [
    ("empty name", "", [zone("z1")], {}, "OB.Tenant.Name.Empty"),
    ("name with $", "sdk$x", [zone("z1")], {}, "OB.Tenant.Name.Invalid"),
    ("reserved name all", "all", [zone("z1")], {}, "OB.Tenant.Name.Invalid"),
    ("name with a space", "sdk x", [zone("z1")], {}, "OB.Tenant.Name.Invalid"),
    ("existing tenant", "sys", [zone("z1")], {}, "OB.Tenant.Existed"),
    ("empty zone list", "sdk_bad1", [], {}, "OB.Tenant.ZoneList.Empty"),
    ("repeated zone", "sdk_bad2", [zone("z1"), zone("z1")], {}, "OB.Tenant.Zone.Repeated"),
    ("unit_num 0", "sdk_bad3", [zone("z1", "s1", 0)], {}, "OB.Tenant.UnitNum.Invalid"),
    ("empty unit config name", "sdk_bad4", [zone("z1", "")], {},
     "OB.Resource.UnitConfig.Name.Empty"),
    ("unknown replica type", "sdk_bad5", [zone("z1", "s1", 1, "FOO")], {},
     "OB.Tenant.Replica.InvalidType"),
    ("unit_num differs between zones", "sdk_bad6", [zone("z1"), zone("z2", "s1", 2)], {},
     "OB.Tenant.UnitNum.Inconsistent"),
    ("unknown zone", "sdk_bad7", [zone("z9")], {}, "OB.Zone.NotExist"),
    ("unknown unit config", "sdk_bad8", [zone("z1", "sdk_nope")], {},
     "OB.Resource.UnitConfig.NotExist"),
    ("unit_num above servers", "sdk_bad9", [zone("z1", "s1", 2)], {},
     "OB.Tenant.UnitNum.ExceedsLimit"),
    ("only READONLY", "sdk_bad10", [zone("z1", "s1", 1, "READONLY")], {},
     "OB.Tenant.NoPaxosReplica"),
    ("primary zone outside zone list", "sdk_bad11", [zone("z1")], {"primary_zone": "z2"},
     "OB.Tenant.PrimaryZone.Invalid"),
]


@pytest.mark.parametrize("case,name,zones,extra,err_code", CREATE_REFUSALS,
                         ids=[c[0] for c in CREATE_REFUSALS])
def test_create_tenant_is_refused(client, case, name, zones, extra, err_code):
    try:
        expect_error(lambda: client.create_tenant(name, zones, **extra), err_code, 400, client)
    except AssertionError:
        if name not in ("sys", ""):
            drop_tenant_quietly(client, name)
        raise


def test_lock_and_unlock(client, adm):
    try:
        assert client.lock_tenant(ADM) is True
        assert tenant(client, ADM).locked == "YES"
        assert client.get_tenant_info(ADM).locked == "YES"
        assert client.unlock_tenant(ADM) is True
        assert tenant(client, ADM).locked == "NO"
        expect_error(lambda: client.lock_tenant("sdk_never_was"), "OB.Tenant.NotExist", 400,
                     client)
        expect_error(lambda: client.unlock_tenant("sdk_never_was"), "OB.Tenant.NotExist", 400,
                     client)
    finally:
        try:
            client.unlock_tenant(ADM)
        except OBShellHandleError:
            pass


def test_replicas_scale_in_scale_out_and_modify(client, adm):
    # Scale in z3 (3 FULL -> 2 FULL): its pool goes away.
    dag = client.delete_tenant_replica_sync(ADM, ["z3"])
    assert dag.name == "Scale in tenant replicas" and dag.state == "SUCCEED", describe_dag(dag)
    assert locality_map(tenant(client, ADM).locality) == {"z1": "FULL", "z2": "FULL"}
    assert sorted(tenant_pools(client, ADM)) == ["z1", "z2"]
    # A zone without a replica is filtered out: nothing to do, 204.
    assert client.delete_tenant_replica_sync(ADM, ["z3"]) is None
    assert last_status(client) == 204
    # 2 FULL -> 1 FULL violates the locality principle.
    expect_error(lambda: client.delete_tenant_replica(ADM, ["z2"]),
                 "OB.Tenant.Locality.PrincipalNotAllowed", 400, client)

    # Scale out z3 again.
    dag = client.add_tenant_replica_sync(ADM, [zone("z3")])
    assert dag.name == "Scale out tenant replicas" and dag.state == "SUCCEED", describe_dag(dag)
    assert locality_map(tenant(client, ADM).locality) == {"z1": "FULL", "z2": "FULL",
                                                          "z3": "FULL"}
    assert sorted(tenant_pools(client, ADM)) == ["z1", "z2", "z3"]
    expect_error(lambda: client.add_tenant_replica(ADM, [zone("z3")]),
                 "OB.Tenant.ZoneAlreadyHasReplica", 400, client)

    # The asynchronous forms return their DAGs.
    dto = client.delete_tenant_replica(ADM, ["z3"])
    assert dto.name == "Scale in tenant replicas" and dto.generic_id.startswith("1"), str(dto)
    assert wait_dag(client, dto.generic_id).state == "SUCCEED"
    dto = client.add_tenant_replica(ADM, [zone("z3")])
    assert dto.name == "Scale out tenant replicas" and dto.generic_id.startswith("1"), str(dto)
    assert wait_dag(client, dto.generic_id).state == "SUCCEED"
    assert locality_map(tenant(client, ADM).locality)["z3"] == "FULL"

    # Modify: z3 to READONLY (3 FULL -> 2 FULL is allowed).
    dag = client.modify_tenant_replica_sync(ADM, [ModifyReplicaParam("z3", replica_type="READONLY")])
    assert dag.name == "Modify tenant replicas" and dag.state == "SUCCEED", describe_dag(dag)
    assert locality_map(tenant(client, ADM).locality) == {"z1": "FULL", "z2": "FULL",
                                                          "z3": "READONLY"}
    # Back to FULL on another unit config.
    assert client.create_resource_unit_config(ADM_UNIT, "4G", 2) is True
    dto = client.modify_tenant_replica(
        ADM, [ModifyReplicaParam("z3", replica_type="FULL", unit_config_name=ADM_UNIT)])
    assert dto.name == "Modify tenant replicas" and dto.generic_id.startswith("1"), str(dto)
    assert wait_dag(client, dto.generic_id).state == "SUCCEED"
    assert locality_map(tenant(client, ADM).locality)["z3"] == "FULL"
    assert tenant_pools(client, ADM)["z3"].unit.name == ADM_UNIT
    # Nothing to change: 204, None.
    assert client.modify_tenant_replica_sync(
        ADM, [ModifyReplicaParam("z3", replica_type="FULL", unit_config_name=ADM_UNIT)]) is None
    assert last_status(client) == 204

    expect_error(lambda: client.modify_tenant_replica(ADM, []),
                 "OB.Tenant.ZoneList.Empty", 400, client)
    expect_error(lambda: client.modify_tenant_replica(ADM, [ModifyReplicaParam("z9", unit_num=1)]),
                 "OB.Tenant.ZoneWithoutReplica", 400, client)
    expect_error(lambda: client.modify_tenant_replica(
        ADM, [ModifyReplicaParam("z3", unit_config_name="sdk_nope")]),
        "OB.Resource.UnitConfig.NotExist", 400, client)
    expect_error(lambda: client.modify_tenant_replica(
        ADM, [ModifyReplicaParam("z1", replica_type="READONLY"),
              ModifyReplicaParam("z2", replica_type="READONLY")]),
        "OB.Tenant.Locality.PrincipalNotAllowed", 400, client)


def test_primary_zone(client, adm):
    try:
        dag = client.set_tenant_primary_zone_sync(ADM, "z1;z2,z3")
        assert dag.name == "Modify tenant primary zone" and dag.state == "SUCCEED", \
            describe_dag(dag)
        assert tenant(client, ADM).primary_zone == "z1;z2,z3"
        dto = client.set_tenant_primary_zone(ADM, "random")  # normalised to RANDOM
        assert dto.name == "Modify tenant primary zone" and dto.generic_id.startswith("1")
        assert wait_dag(client, dto.generic_id).state == "SUCCEED"
        assert tenant(client, ADM).primary_zone == "RANDOM"
        expect_error(lambda: client.set_tenant_primary_zone(ADM, "z9"),
                     "OB.Tenant.PrimaryZone.Invalid", 400, client)
        expect_error(lambda: client.set_tenant_primary_zone(ADM, "z1;z1"),
                     "OB.Tenant.PrimaryZone.Invalid", 400, client)
        expect_error(lambda: client.set_tenant_primary_zone("sdk_never_was", "RANDOM"),
                     "OB.Tenant.NotExist", 400, client)
    finally:
        try:
            d = client.set_tenant_primary_zone(ADM, "RANDOM")
            if d is not None:
                wait_dag(client, d.generic_id)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def test_whitelist(client, adm):
    assert client.set_tenant_whitelist(ADM, "192.168.1.%") is True
    assert client.get_tenant_info(ADM).white_list == "192.168.1.%,127.0.0.1"
    var = client.get_tenant_variable(ADM, "ob_tcp_invited_nodes")
    assert var.value == "192.168.1.%,127.0.0.1", str(var)
    assert client.set_tenant_whitelist(ADM, "") is True
    assert client.get_tenant_info(ADM).white_list == "127.0.0.1"
    expect_error(lambda: client.set_tenant_whitelist("sdk_never_was", "%"),
                 "OB.Tenant.NotExist", 400, client)


def test_root_password(client, adm):
    new = "New-Pw2"
    assert client.set_tenant_root_password(ADM, new, old_password=ROOT_PASSWORD) is True
    assert client.persist_tenant_root_password(ADM, new) is True
    expect_error(lambda: client.persist_tenant_root_password(ADM, ROOT_PASSWORD),
                 "OB.Tenant.RootPasswordIncorrect", 400, client)
    # A wrong old password cannot connect: refused, and the password is unchanged.
    try:
        client.set_tenant_root_password(ADM, "Other-Pw3", old_password="wrong")
    except OBShellHandleError:
        pass
    else:
        raise AssertionError("set_tenant_root_password accepted a wrong old password")
    assert client.persist_tenant_root_password(ADM, new) is True
    expect_error(lambda: client.set_tenant_root_password("sys", "x", old_password=""),
                 "OB.Tenant.SysOperationNotAllowed", 400, client)
    expect_error(lambda: client.persist_tenant_root_password("sdk_never_was", "x"),
                 "OB.Tenant.NotExist", 400, client)


def test_variables(client, adm):
    assert client.set_tenant_variables(ADM, {"ob_query_timeout": 20000000}) is True
    var = client.get_tenant_variable(ADM, "ob_query_timeout")
    assert var.name == "ob_query_timeout" and str(var.value) == "20000000", str(var)
    assert isinstance(var.info, str)
    some = client.get_tenant_variables(ADM, "ob_query%")
    assert "ob_query_timeout" in [v.name for v in some], [v.name for v in some]
    assert all(v.name.startswith("ob_query") for v in some), [v.name for v in some]
    every = client.get_tenant_variables(ADM)
    assert len(every) >= len(some) and "ob_tcp_invited_nodes" in [v.name for v in every]
    expect_error(lambda: client.get_tenant_variable(ADM, "sdk_no_such_variable"),
                 "OB.Tenant.Variable.NotExist", 404, client)
    expect_error(lambda: client.set_tenant_variables(ADM, {"sdk_no_such_variable": 1}),
                 "OB.Tenant.Variable.NotExist", 404, client)
    expect_error(lambda: client.get_tenant_variables("sdk_never_was"),
                 "OB.Tenant.NotExist", 400, client)


def test_parameters(client, adm):
    name = "writing_throttling_trigger_percentage"
    assert client.set_tenant_parameters(ADM, {name: 70}) is True
    param = client.get_tenant_parameter(ADM, name)
    assert param.name == name and str(param.value) == "70", str(param)
    assert param.data_type and param.edit_level and isinstance(param.info, str), str(param)
    some = client.get_tenant_parameters(ADM, "writing_throttling%")
    assert name in [p.name for p in some], [p.name for p in some]
    assert all(p.name.startswith("writing_throttling") for p in some)
    assert len(client.get_tenant_parameters(ADM)) >= len(some)
    expect_error(lambda: client.get_tenant_parameter(ADM, "sdk_no_such_parameter"),
                 "OB.Tenant.Parameter.NotExist", 400, client)
    expect_error(lambda: client.set_tenant_parameters(ADM, {"sdk_no_such_parameter": 1}),
                 "OB.Tenant.Parameter.NotExist", 400, client)
    expect_error(lambda: client.get_tenant_parameters("sdk_never_was"),
                 "OB.Tenant.NotExist", 400, client)
