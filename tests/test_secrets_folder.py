"""The service reads its provider key from the data dir's secrets folder (where `ib serve`
puts it), so the key is in no process environment; tests/test_secrets.py checks the
whole `ib serve` path."""

import os

import pytest
from helpers import INTERVIEWER_TOKEN

from ib_extension.service.secrets import (
    PROVIDER_KEY,
    PROVIDER_KEY_ENV,
    SecretsFolder,
    folder_of,
    take_from_environment,
)

KEY_IN_FILE = "sk-key-from-the-secrets-folder"


@pytest.fixture
def jp_server_config(ib_config, monkeypatch):
    """The service started as `ib serve` leaves it: the key in a file, none in the env."""
    for name in PROVIDER_KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    SecretsFolder(folder_of(ib_config["data_dir"])).write(PROVIDER_KEY, KEY_IN_FILE)
    return {
        "ServerApp": {"jpserver_extensions": {"ib_extension.service": True},
                      "reraise_server_extension_failures": True},
        "IdentityProvider": {"token": INTERVIEWER_TOKEN},
        "IBExtension": ib_config,
    }


def test_the_provider_key_is_read_from_the_secrets_folder(service):
    assert service.provider.api_key == KEY_IN_FILE
    assert not any(os.environ.get(name) for name in PROVIDER_KEY_ENV)


def test_secrets_move_out_of_the_environment_into_private_files(tmp_path):
    folder = SecretsFolder(tmp_path / "data" / "secrets")
    env = {"PATH": "/usr/bin", "IB_LLM_API_KEY": "sk-other", "IB_TOKEN": "tok",
           "JUPYTERHUB_API_TOKEN": "hub"}
    assert take_from_environment(env, folder) == {"PATH": "/usr/bin"}
    assert folder.read(PROVIDER_KEY) == "sk-other"
    assert folder.path.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in folder.path.iterdir()} == {0o600}
    # A key not given on the next start is not used from the earlier one.
    take_from_environment({"IB_TOKEN": "tok"}, folder)
    assert folder.read(PROVIDER_KEY) is None and folder.read("interviewer_token") == "tok"
