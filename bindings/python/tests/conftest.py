"""Fixtures for the ordo binding's tests: a small context, a wallet in
tmp_path with a raw key (no Argon2id: the suite stays fast)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import ordo  # noqa: E402


def pytest_configure(config):
    try:
        ordo.load_library()
    except ordo.LibraryNotFoundError as e:
        if "ORDO_LIBRARY" in os.environ:
            raise  # asked for a library that is not there: a failure
        pytest.exit("no libordo to test (set ORDO_LIBRARY): %s" % e,
                    returncode=0)


@pytest.fixture
def ctx():
    with ordo.Context({"cheap_threads": 2, "heavy_threads": 1}) as c:
        yield c


class Wallet:
    def __init__(self, ctx, path, wid="w1"):
        self.id = wid
        self.config = {"id": wid, "path": str(path)}
        self.credentials = {"key": ordo.raw_key(),
                            "key_derivation_method": "raw"}
        ctx.wallet_create(self.config, self.credentials)
        ctx.wallet_open(self.config, self.credentials)


@pytest.fixture
def wallet(ctx, tmp_path):
    w = Wallet(ctx, tmp_path / "wallets")
    yield w
    try:
        ctx.wallet_close(w.id)
    except ordo.OrdoError:
        pass  # the test closed it
