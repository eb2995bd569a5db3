"""Info, status, cluster info, auth negotiation and unknown routes."""

from obshell import ClientV1, OBShellHandleError
from obshell.auth.base import AuthVersion
from obshell.auth.password import PasswordAuth

from sdkutil import HOST, check_envelope, last_status, raw


def test_info_reports_a_v2_only_cluster_agent(client, agent):
    info = client.get_info()
    assert info.identity == "CLUSTER AGENT"
    assert info.version == "4.2.4.0"
    assert info.pid == agent.pid
    assert info.state == 2
    assert isinstance(info.start_at, int) and info.start_at > 0, info.start_at
    assert isinstance(info.home_path, str) and info.home_path, info.home_path
    assert info.ip == HOST and info.port == agent.port
    assert info.secrity is True  # sic: the SDK model's attribute for "security"

    answer = raw(client, "GET", "/api/v1/info")
    check_envelope(answer, 200)
    data = answer.data
    # obshell 4.2.4 lists only v2; the SDK takes the first entry it supports.
    assert data["supportedAuth"] == ["v2"], data
    assert data["security"] is True, "security means: the agent has a password"
    assert data["isObproxyAgent"] is False
    assert isinstance(data["obVersion"], str) and data["obVersion"], data
    for key in ("pid", "state", "startAt", "homePath"):
        assert key in data, f"/info lacks {key}: {data}"


def test_sdk_negotiates_v2_and_sends_encrypted_bodies(client, backup):
    answer = raw(client, "GET", "/api/v1/restore/windows",
                 data={"data_backup_uri": backup.data_uri,
                       "archive_log_uri": backup.archive_uri})
    assert client._get_auth().get_version() == AuthVersion.V2
    headers = answer.request.headers
    assert "X-OCS-Header" in headers and "X-OCS-Auth" not in headers, headers.keys()
    body = answer.request.data
    assert isinstance(body, str) and not body.lstrip().startswith("{"), \
        f"v2 sends the body AES-encrypted (base64), got {body[:80]!r}"
    # The agent decrypted it: the windows are those of the given destinations.
    check_envelope(answer, 200)
    assert answer.data["restore_windows"], answer


def test_wrong_password_is_refused(agent):
    intruder = ClientV1(HOST, agent.port, PasswordAuth("not-the-password"), timeout=30)
    try:
        intruder.get_all_tenants()
    except OBShellHandleError as err:
        assert err.code == 10008, f"obshell's old auth code is 10008: {err}"
        assert last_status(intruder) == 401
    else:
        raise AssertionError("a wrong password was accepted")


def test_status_reports_agent_and_ob_state(client, agent):
    status = client.get_status()
    assert status.agent.ip == HOST
    assert status.agent.port == agent.port
    assert status.agent.identity == "CLUSTER AGENT"
    assert status.state == 2
    assert status.ob_state == 3, "obState 3: connection available"
    assert status.version == "4.2.4.0"
    assert status.pid == agent.pid
    # The SDK model reads `under_maintenance`/`start_at` (snake case) while obshell sends
    # `underMaintenance`/`startAt` (lib/http/status.go): check them on the wire.
    answer = raw(client, "GET", "/api/v1/status")
    check_envelope(answer, 200)
    assert isinstance(answer.data["underMaintenance"], bool), answer
    assert isinstance(answer.data["startAt"], int) and answer.data["startAt"] > 0, answer


def test_ob_info_lists_this_agent_and_the_topology(client, agent):
    info = client.get_ob_info()
    agents = [(a.ip, a.port) for a in info.agents]
    assert (HOST, agent.port) in agents, agents
    assert info.cluster is not None, "obcluster_info missing"
    assert sorted(info.cluster.zone_config) == ["z1", "z2", "z3"], info.cluster.zone_config
    for zone_name, servers in info.cluster.zone_config.items():
        assert len(servers) == 1, f"{zone_name}: one server per zone, got {len(servers)}"


def test_unknown_route_is_a_404_envelope(client):
    answer = raw(client, "GET", "/api/v1/nope")
    check_envelope(answer, 404, "Common.NotFound")


def test_wrong_method_is_a_404_or_405_envelope(client):
    answer = raw(client, "PUT", "/api/v1/info")
    assert answer.status in (404, 405), answer
    check_envelope(answer, answer.status, "Common.NotFound")
