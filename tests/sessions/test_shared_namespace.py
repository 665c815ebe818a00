"""The namespace of the shared caches: equal for instances of one deployment, else apart."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.config.model import Config
from gateway.sessions.shared import shared_namespace

BASE: dict[str, Any] = {
    "listen": {"port": 8080},
    "routes": [{"path": "/", "upstream": "http://127.0.0.1:9000", "auth": "bearer"}],
    "sessions": {"store": "redis", "secrets": ["a" * 40]},
    "bearer": {
        "issuers": [
            {
                "issuer": "https://idp.example",
                "audiences": ["api", "web"],
                "introspection": {"client_id": "rs", "client_secret": "s"},
            },
        ]
    },
    "providers": [
        {"name": "idp", "issuer": "https://idp.example", "client_id": "gw", "client_secret": "s"}
    ],
}


def namespace(**changes: Any) -> str:
    config = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return shared_namespace(Config.model_validate(config))


def test_instances_of_one_deployment_share_a_namespace() -> None:
    """Another port, a rotated secret, reordered audiences or timeouts keep the namespace."""
    assert len(namespace()) == 16
    assert namespace() == namespace(listen__port=9090)
    assert namespace() == namespace(sessions__secrets=["b" * 40, "a" * 40])
    assert namespace() == namespace(bearer__issuers__0__audiences=["web", "api"])
    assert namespace() == namespace(bearer__cache_ttl=60)


def test_the_namespace_is_the_one_earlier_versions_computed() -> None:
    """A rolling upgrade keeps the namespace: the new version computes, for the same
    config, the namespace the previous one wrote its entries under (stored at commit
    94a77a5), so used logout-token jtis and cached verdicts are still found. Never
    re-generate it to make a change pass; such a change needs a migration instead."""
    assert "ca1006fed6897b8a" == namespace()


def test_the_order_of_issuers_and_providers_does_not_matter() -> None:
    """Two instances listing the same issuers and providers in another order share."""
    second_issuer = {"issuer": "https://b.example", "audiences": ["api"]}
    second_provider = {"name": "b", "issuer": "https://b.example", "client_id": "gw",
                       "client_secret": "s"}  # fmt: skip
    issuers = [*BASE["bearer"]["issuers"], second_issuer]
    providers = [*BASE["providers"], second_provider]
    assert namespace(bearer__issuers=issuers, providers=providers) == namespace(
        bearer__issuers=issuers[::-1], providers=providers[::-1]
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sessions__redis": {"key_prefix": "other:"}},
        {"bearer__issuers__0__audiences": ["api"]},
        {"bearer__issuers__0__issuer": "https://other.example"},
        {"bearer__issuers__0__introspection": {"client_id": "rs2", "client_secret": "s"}},
        {"providers__0__client_id": "gw2"},
        {"providers__0__issuer": "https://other-op.example"},
        {
            "bearer__issuers__0__introspection": {
                "client_id": "rs",
                "client_secret": "s",
                "endpoint": "https://idp.example/other",
            }
        },
        {
            "bearer__issuers__0__introspection": {
                "client_id": "rs",
                "client_secret": "s",
                "require_audience": False,
            }
        },
        {"bearer__issuers__0__introspection": None},
    ],
)
def test_other_deployments_get_other_namespaces(change: dict[str, Any]) -> None:
    """A different prefix, audience set, issuer, introspection client or provider client
    is another deployment: its shared entries live apart."""
    assert namespace(**change) != namespace()
