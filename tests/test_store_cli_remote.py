"""The CLI reads every store the library reads: `inspect` and `verify` on an s3:// URL (a moto
server on 127.0.0.1), with --allow-http, --storage-option and --cache-dir, and errors that
name the cause."""

from __future__ import annotations

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from mobileclip_fastload.cli import main
from remote_s3 import CREDENTIALS, upload


def remote_args(endpoint: str, cache) -> list[str]:
    creds = [f"--storage-option={k}={v}" for k, v in CREDENTIALS.items()]
    return [f"--storage-option=aws_endpoint={endpoint}", *creds, "--cache-dir", str(cache)]


def test_inspect_and_verify_read_a_url(s3, s3_endpoint, local_store, tmp_path, capsys):
    url = upload(s3, local_store, "cli")
    assert main(["inspect", url, "--allow-http", *remote_args(s3_endpoint, tmp_path), "--sample", "-1"]) == 0
    out = capsys.readouterr().out
    assert f"store          {url}" in out and "samples        24 in" in out and "sample -1 (uid" in out
    assert main(["verify", url, "--allow-http", *remote_args(s3_endpoint, tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {url}:")


def test_plain_http_without_allow_http_says_so(s3, s3_endpoint, local_store, tmp_path, capsys):
    url = upload(s3, local_store, "nohttp")
    assert main(["inspect", url, *remote_args(s3_endpoint, tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "allow_http" in err and "--allow-http" in err


def test_remote_options_on_a_local_path_are_an_error(local_store, capsys):
    assert main(["inspect", str(local_store), "--allow-http"]) == 2
    assert "--allow-http: only for a store URL" in capsys.readouterr().err


def test_bad_storage_option_syntax_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "s3://b/p", "--storage-option", "no-equals-sign"])
    assert exit_.value.code == 2 and "expected KEY=VALUE" in capsys.readouterr().err


def test_verify_names_the_missing_object_once(s3, s3_endpoint, local_store, tmp_path, capsys):
    url = upload(s3, local_store, "cli-missing")
    s3.delete_object(Bucket="stores", Key="cli-missing/shard-00001.arrow")
    assert main(["verify", url, "--allow-http", *remote_args(s3_endpoint, tmp_path)]) == 1
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "shard-00001" in ln)
    assert line.count(f"{url}/shard-00001.arrow") == 1, line
