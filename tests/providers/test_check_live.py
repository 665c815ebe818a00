"""`gateway check` run live against provider-shaped OPs: the profile's issuer rules apply."""

from __future__ import annotations

import json
from pathlib import Path

from tests.providers.conftest import ProfiledOP
from tests.test_cli import gateway

TENANT = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"


def write_config(tmp_path: Path, provider: dict[str, object]) -> Path:
    config = {
        "routes": [{"path": "/", "upstream": "http://127.0.0.1:9"}],
        "providers": [{"name": "p", "client_id": "c", "client_secret": "s" * 32,
                       "allow_insecure_http": True, "allow_private_network": True,
                       **provider}],
    }  # fmt: skip
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_check_entra_multi_tenant_issuer_with_and_without_the_profile(
    tmp_path: Path, profiled_op: ProfiledOP
) -> None:
    """Against the /organizations/v2.0 document ({tenantid} issuer), `gateway check` with
    profile entra names the profile and loads the document; without a profile it reports
    the issuer mismatch as an error (exit 1), as a login would fail."""
    op = profiled_op("entra", issuer_path=f"/{TENANT}/v2.0", env={"OP_TENANT": TENANT})
    issuer = f"{op.issuer}/organizations/v2.0"
    client = op.register_client(redirect_uris=["https://gw.example/_gateway/callback"])
    credentials = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    entra = write_config(tmp_path, {"issuer": issuer, "profile": "entra", **credentials,
                                    "entra": {"tenants": [TENANT]}})  # fmt: skip
    result = gateway("check", "-c", str(entra))
    assert "profile entra applied" in result.stdout
    assert "discovery document loaded" in result.stdout
    assert result.returncode == 0, result.stdout
    generic = write_config(tmp_path, {"issuer": issuer})
    result = gateway("check", "-c", str(generic))
    assert result.returncode == 1
    assert "{tenantid}" in result.stdout


def test_check_github_needs_no_discovery(tmp_path: Path) -> None:
    """A github provider is checked as OAuth 2.0: no discovery document or JWKS demanded."""
    config = write_config(tmp_path, {"profile": "github", "github": {"identity_from_api": True}})
    result = gateway("check", "-c", str(config))
    assert "profile github applied" in result.stdout
    assert "OAuth 2.0 provider" in result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("[ERROR")]
    # This machine cannot reach github.com: only the credential probe may fail, for that.
    assert all("client credentials not checked" in line for line in errors), result.stdout
    assert "discovery" not in result.stdout.lower().replace("no discovery", "")
