"""Credentials come only from Airflow connections; nothing here logs or returns a secret."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiCredentials:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    extra: dict = field(default_factory=dict)


def api_credentials(conn_id: str) -> ApiCredentials:
    """Read an API connection: host = base URL (scheme optional, https assumed), login = client id,
    password = client secret, extra = connector options."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"Airflow connection {conn_id!r} has no host (the API base URL)")
    if "://" not in host:
        host = f"https://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    if not conn.login or not conn.password:
        raise ValueError(f"Airflow connection {conn_id!r} needs login (client id) and password (client secret)")
    return ApiCredentials(host, conn.login, conn.password, dict(conn.extra_dejson or {}))
