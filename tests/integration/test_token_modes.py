"""JWT_ALGORITHM=EdDSA wired through the real apps: customer_service mints user tokens with the private key,
accounts_service verifies them with the public key and refuses what its own secrets could sign."""

from __future__ import annotations

import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts_service.app import create_app as create_accounts_app
from accounts_service.settings import Settings as AccountsSettings
from customer_service.app import create_app as create_customer_app
from customer_service.domain import Login, Role
from customer_service.passwords import Passwords
from customer_service.service import create_login
from customer_service.settings import Settings as CustomerSettings
from shared.auth import ACCOUNTS_SERVICE_NAME, issue_token
from shared.database import create_engine
from tests.conftest import TEST_COORDINATOR_SECRET, TEST_JWT_SECRET, serve

SERVICE_SECRET = "service-token-secret-for-the-suite-0123456789"
PASSWORD = "correct horse battery"


def write_key_pair(directory: Path) -> tuple[str, str]:
    private_key = Ed25519PrivateKey.generate()
    private_file, public_file = directory / "jwt-private.pem", directory / "jwt-public.pem"
    private_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public_file.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(private_file), str(public_file)


@pytest.mark.asyncio(loop_scope="session")
async def test_eddsa_user_tokens_from_customer_service_pass_accounts_service(
    customers_db_url: str, accounts_db_url: str, tmp_path: Path
) -> None:
    private_file, public_file = write_key_pair(tmp_path)
    username = f"eddsa-{uuid.uuid4().hex[:12]}"
    engine = create_engine(customers_db_url, pool_size=1)
    try:
        await create_login(
            engine,
            Passwords(time_cost=1, memory_kib=8192),
            Login(username=username, password=PASSWORD, role=Role.TELLER, customer_id=None),
        )
    finally:
        await engine.dispose()
    keys = {
        "jwt_secret": TEST_JWT_SECRET,
        "jwt_algorithm": "EdDSA",
        "jwt_public_key_file": public_file,
        "service_token_secret": SERVICE_SECRET,
        "coordinator_token_secret": TEST_COORDINATOR_SECRET,
        "log_dir": str(tmp_path),
    }
    customers = create_customer_app(
        CustomerSettings(
            database_url=customers_db_url,
            jwt_private_key_file=private_file,
            argon2_time_cost=1,
            argon2_memory_kib=8192,
            **keys,
        )
    )
    accounts = create_accounts_app(AccountsSettings(database_url=accounts_db_url, **keys))
    async with serve(customers) as customer_client, serve(accounts) as accounts_client:
        response = await customer_client.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status == 200, await response.text()
        user_token = (await response.json())["data"]["token"]
        assert jwt.get_unverified_header(user_token)["alg"] == "EdDSA"
        path = f"/accounts/customer/{uuid.uuid4()}"

        async def status(bearer_token: str) -> int:
            answer = await accounts_client.get(path, headers={"Authorization": f"Bearer {bearer_token}"})
            return answer.status

        assert await status(user_token) == 200
        # What accounts_service itself holds cannot make a user: not the old shared secret, not the service one.
        assert await status(issue_token(TEST_JWT_SECRET, role="admin")[0]) == 401
        assert await status(jwt.encode({"role": "admin", "iat": 1, "exp": 2**40}, SERVICE_SECRET, "HS256")) == 401
        service_token = issue_token(SERVICE_SECRET, role="service", audience=ACCOUNTS_SERVICE_NAME, ttl_s=60)[0]
        assert await status(service_token) == 200
