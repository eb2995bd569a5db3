"""Tenants (drop through a DAG, recycle bin), unit configs and resource pools
(obshell: executor/tenant/drop_tenant.go, executor/recyclebin, executor/unit, pool)."""

from sdkutil import (MAIN_TENANT, check_envelope, describe_dag, drop_tenant_quietly,
                     expect_error, last_status, pool_names, raw, submit_restore,
                     tenant_names, wait_dag)


def restore_tenant(client, backup, tenant, zone_name):
    """A tenant to play with: a restore run to SUCCEED (polled, not the SDK's 3 s loop)."""
    dto = submit_restore(client, backup, tenant, backup.scn_at(0.3), zone_name)
    dag = wait_dag(client, dto.generic_id)
    assert dag.state == "SUCCEED", describe_dag(dag)
    pools = [p for p in pool_names(client) if p.startswith(f"{tenant}_")]
    assert pools, f"{tenant} has no pool"
    return pools


def test_drop_tenant_returns_its_dag_and_removes_tenant_and_pools(client, backup):
    tenant = "sdk_drop"
    try:
        restore_tenant(client, backup, tenant, "z3")
        dto = client.drop_tenant(tenant)
        assert dto is not None, "drop_tenant returned nothing for an existing tenant"
        assert dto.name == "Drop tenant" and dto.generic_id.startswith("1"), str(dto)
        assert dto.state in ("READY", "RUNNING", "SUCCEED"), dto.state
        wire = raw(client, "GET", f"/api/v1/task/dag/{dto.generic_id}",
                   query={"show_details": False})
        check_envelope(wire, 200)
        assert wire.data["maintenance_type"] == 3 and wire.data["maintenance_key"] == tenant
        done = client.wait_dag_succeed(dto.generic_id)
        assert (done.state, done.operator) == ("SUCCEED", "RUN"), describe_dag(done)
        assert tenant not in tenant_names(client)
        assert [p for p in pool_names(client) if p.startswith(f"{tenant}_")] == []
        # The newest cluster maintenance DAG is this drop.
        last = raw(client, "GET", "/api/v1/task/dag/maintain/ob")
        check_envelope(last, 200)
        assert last.data["id"] == dto.generic_id and last.data["name"] == "Drop tenant", last
        expect_error(lambda: client.get_tenant_info(tenant), "OB.Tenant.NotExist", 400, client)
    finally:
        drop_tenant_quietly(client, tenant)


def test_drop_tenant_sync(client, backup):
    tenant = "sdk_drop_sync"
    try:
        restore_tenant(client, backup, tenant, "z2")
        dag = client.drop_tenant_sync(tenant)
        assert dag.name == "Drop tenant" and dag.state == "SUCCEED", describe_dag(dag)
        assert tenant not in tenant_names(client)
        assert [p for p in pool_names(client) if p.startswith(f"{tenant}_")] == []
    finally:
        drop_tenant_quietly(client, tenant)


def test_drop_tenant_refusals(client):
    assert client.drop_tenant("sdk_never_was") is None
    assert last_status(client) == 204
    assert client.drop_tenant_sync("sdk_never_was") is None
    expect_error(lambda: client.drop_tenant("sys"), "OB.Tenant.SysOperationNotAllowed", 400,
                 client)


def recycled(client, original):
    return [t for t in client.get_all_recyclebin_tenants()
            if t.original_tenant_name == original]


def test_recycle_bin_flashback_and_purge(client, backup):
    tenant, renamed = "sdk_recycle", "sdk_recycle_back"
    try:
        pools = restore_tenant(client, backup, tenant, "z3")

        # Drop into the recycle bin: the tenant leaves the list, its pools stay.
        dag = client.drop_tenant_sync(tenant, need_recycle=True)
        assert dag.name == "Drop tenant" and dag.state == "SUCCEED", describe_dag(dag)
        assert tenant not in tenant_names(client)
        entries = recycled(client, tenant)
        assert len(entries) == 1, [str(e) for e in client.get_all_recyclebin_tenants()]
        entry = entries[0]
        assert entry.object_name and entry.object_name != tenant, str(entry)
        assert (entry.can_undrop, entry.can_purge) == ("YES", "YES"), str(entry)
        assert set(pools) <= set(pool_names(client)), "pools are kept in the recycle bin"

        # Flashback under the original name.
        assert client.flashback_recyclebin_tenant(tenant) is True
        back = {t.name: t for t in client.get_all_tenants()}
        assert tenant in back and back[tenant].status == "NORMAL", sorted(back)
        assert recycled(client, tenant) == []

        # Again, then flashback by object name under a new name.
        client.drop_tenant_sync(tenant, need_recycle=True)
        entry = recycled(client, tenant)[0]
        assert client.flashback_recyclebin_tenant(entry.object_name, new_name=renamed) is True
        names = tenant_names(client)
        assert renamed in names and tenant not in names, names

        # Recycle and purge: tenant and pools are gone for good.
        client.drop_tenant_sync(renamed, need_recycle=True)
        assert len(recycled(client, renamed)) == 1
        purge = client.purge_recyclebin_tenant_sync(renamed)
        assert purge is not None and purge.state == "SUCCEED", describe_dag(purge)
        assert recycled(client, renamed) == []
        assert renamed not in tenant_names(client)
        assert [p for p in pool_names(client) if p in pools] == [], pool_names(client)

        expect_error(lambda: client.flashback_recyclebin_tenant("sdk_not_recycled"),
                     "OB.Recyclebin.Tenant.NotExist", 400, client)
        assert client.purge_recyclebin_tenant("sdk_not_recycled") is None
        assert last_status(client) == 204
    finally:
        for name in (tenant, renamed):
            drop_tenant_quietly(client, name)
        for entry in recycled(client, tenant) + recycled(client, renamed):
            try:
                client.purge_recyclebin_tenant(entry.object_name)
            except Exception:  # noqa: BLE001 - cleanup only
                pass


def test_purge_recyclebin_tenant_returns_its_dag(client, backup):
    tenant = "sdk_purge"
    try:
        restore_tenant(client, backup, tenant, "z2")
        client.drop_tenant_sync(tenant, need_recycle=True)
        dto = client.purge_recyclebin_tenant(tenant)
        assert dto is not None and dto.generic_id.startswith("1"), str(dto)
        done = wait_dag(client, dto.generic_id)
        assert done.state == "SUCCEED", describe_dag(done)
        assert recycled(client, tenant) == []
        assert [p for p in pool_names(client) if p.startswith(f"{tenant}_")] == []
    finally:
        drop_tenant_quietly(client, tenant)


# --------------------------------------------------------------------------------------
# Unit configs and pools
# --------------------------------------------------------------------------------------


def test_unit_config_lifecycle(client):
    name = "sdk_u1"
    try:
        assert client.create_resource_unit_config(name, "4G", 2) is True
        unit = client.get_resource_unit_config(name)
        assert unit.name == name
        assert isinstance(unit.unit_config_id, int) and unit.unit_config_id > 0
        assert unit.max_cpu == 2.0 and unit.min_cpu == 2.0, str(unit)
        assert unit.memory_size == 4294967296, str(unit)
        assert isinstance(unit.log_disk_size, int) and unit.log_disk_size > 0, str(unit)
        for key in ("max_iops", "min_iops"):
            assert isinstance(getattr(unit, key), int) and getattr(unit, key) >= 0, (key, str(unit))
        assert unit.create_time and unit.modify_time, str(unit)
        # data_disk_size is not in the SDK's UnitConfig model: read it on the wire.
        wire = raw(client, "GET", f"/api/v1/unit/config/{name}")
        check_envelope(wire, 200)
        assert isinstance(wire.data["data_disk_size"], int), wire

        listed = {u.name: u for u in client.get_all_resource_unit_configs()}
        assert name in listed and "s1" in listed, sorted(listed)
        assert listed[name].unit_config_id == unit.unit_config_id

        expect_error(lambda: client.create_resource_unit_config(name, "4G", 2),
                     "OB.Resource.UnitConfig.Existed", 400, client)
        expect_error(lambda: client.create_resource_unit_config("sdk_u_bad", "4X", 2),
                     "Common.IllegalArgument", 400, client)

        assert client.drop_resource_unit_config(name) is True
        expect_error(lambda: client.get_resource_unit_config(name),
                     "OB.Resource.UnitConfig.NotExist", 400, client)
        assert client.drop_resource_unit_config(name) is True, "dropping a missing one is 200"
        assert last_status(client) == 200
        assert name not in [u.name for u in client.get_all_resource_unit_configs()]
    finally:
        try:
            client.drop_resource_unit_config(name)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def test_resource_pools(client, restored):
    info = client.get_tenant_info(MAIN_TENANT)
    s1 = client.get_resource_unit_config("s1")
    pools = {p.name: p for p in client.get_all_resource_pools()}
    mine = [p for p in pools.values() if p.tenant_id == info.id]
    assert len(mine) == 1, [str(p) for p in pools.values()]
    pool = mine[0]
    assert pool.name == info.pools[0].name and pool.id == info.pools[0].id
    assert pool.zone_list == "z1" and pool.unit_num == 1
    assert pool.unit_config_id == s1.unit_config_id
    assert client.drop_resource_pool("sdk_no_such_pool") is True
    assert last_status(client) == 200
    expect_error(lambda: client.drop_resource_pool(pool.name), "OB.Resource.Pool.Granted",
                 400, client)
    assert pool.name in pool_names(client)
