"""Remembered tokens: a cached verification never outlives the token."""

from __future__ import annotations

import time

import pytest

from shared.auth import Role, TokenVerifier, mint_token
from shared.problems import Problem

KEY = "unit-secret-0123456789-0123456789-0123456789"


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    verifier = TokenVerifier(KEY, "HS256")
    token = mint_token(KEY, role=Role.AUDITOR, subject="a-1", ttl_seconds=1)
    assert verifier.verify(token).subject == "a-1"
    deadline = time.monotonic() + 5
    while True:
        try:
            verifier.verify(token)
        except Problem as refused:
            assert refused.status == 401
            assert "expired" in str(refused.detail)
            break
        assert time.monotonic() < deadline, "a remembered token outlived its expiry"
        time.sleep(0.05)


def test_a_forged_token_is_refused_even_next_to_a_remembered_one() -> None:
    verifier = TokenVerifier(KEY, "HS256")
    token = mint_token(KEY, role=Role.VENDOR, vendor_id="v-1")
    verifier.verify(token)
    forged = mint_token("another-key-0123456789-0123456789-0123", role=Role.VENDOR, vendor_id="v-1")
    with pytest.raises(Problem):
        verifier.verify(forged)
    with pytest.raises(Problem):
        verifier.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_the_cache_stays_bounded() -> None:
    verifier = TokenVerifier(KEY, "HS256")
    for n in range(TokenVerifier.CACHE_SIZE + 10):
        verifier.verify(mint_token(KEY, role=Role.AUDITOR, subject=f"a-{n}"))
    assert len(verifier._verified) <= TokenVerifier.CACHE_SIZE
