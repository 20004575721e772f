"""Authenticated sessions on the emulators, obtained as any client would."""

from __future__ import annotations

from pathlib import Path

import requests

from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

BODEA = Path(__file__).resolve().parents[2] / "include" / "scenarios" / "bodea.yaml"
CREDENTIALS = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
               "client_secret": DEFAULT_CLIENT_SECRET}


def marketo_token(base: str) -> str:
    return requests.get(f"{base}/identity/oauth/token", params=CREDENTIALS).json()["access_token"]


def marketo_session(base: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {marketo_token(base)}"
    return session


def salesforce_session(base: str) -> requests.Session:
    session = requests.Session()
    token = requests.post(f"{base}/services/oauth2/token", data=CREDENTIALS).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session
