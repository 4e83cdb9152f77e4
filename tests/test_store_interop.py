"""A store written by the Rust writer is plain Arrow IPC: pyarrow, Polars and DuckDB
read its shards (columns and one row's values), and pyarrow's schema is the one
`mobileclip_fastload.store.interop.shard_schema` builds from the core's definition.

DuckDB has no built-in Arrow IPC file reader (that is a downloadable extension),
so it queries the memory-mapped pyarrow table through the Arrow C data interface;
it has no half-float type, so a float16 store's embeddings are not queried there."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from conftest import synthetic_sample
from mobileclip_fastload import Store
from mobileclip_fastload.store import StoreWriter, decode_embeddings
from mobileclip_fastload.store.interop import shard_schema

J, S, K, D = 3, 2, 2, 4


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int8"])
def test_pyarrow_polars_and_duckdb_read_a_store(tmp_path, dtype):
    samples = [synthetic_sample(i, J=J, S=S, K=K, D=D) for i in range(5)]
    with StoreWriter(tmp_path, J=J, S=S, K=K, D=D, embedding_dtype=dtype) as w:
        for s in samples:
            w.add(s)
    store = Store(tmp_path)
    shard = str(tmp_path / store.shard_entry(0)["file"])
    row, want = 3, samples[3]
    stored_image_emb = store.image_embs(row)

    with pa.memory_map(shard) as source:
        table = pa.ipc.open_file(source).read_all()
    assert table.schema.equals(shard_schema({"J": J, "S": S, "K": K, "D": D}, dtype), check_metadata=True)
    got = table.slice(row, 1).to_pylist()[0]
    assert got["uid"] == want.uid and got["image"] == want.image and got["caption"] == want.caption
    assert got["syn_captions"] == want.syn_captions and got["caption_tokens"] == want.caption_tokens.tolist()
    assert got["aug"] == want.aug.tobytes() and got["sha256"] == want.sha256
    np.testing.assert_array_equal(np.array(got["image_emb"], stored_image_emb.dtype), stored_image_emb.reshape(-1))

    frame = pl.read_ipc(shard)
    assert frame.columns == table.column_names
    prow = frame.row(row, named=True)
    assert prow["uid"] == want.uid and prow["width"] == want.width and prow["flags"] == want.flags
    assert list(prow["syn_captions"]) == want.syn_captions
    np.testing.assert_array_equal(np.asarray(prow["image_emb"], stored_image_emb.dtype), stored_image_emb.reshape(-1))

    con = duckdb.connect()
    # DuckDB has no half-float type: a float16 store's embedding columns stay with pyarrow/Polars.
    con.register("shard", table.drop_columns(["image_emb", "text_emb"]) if dtype == "float16" else table)
    uid, width, tokens = con.execute(
        f"SELECT uid, width, caption_tokens FROM shard WHERE uid = '{want.uid}'"
    ).fetchone()
    assert (uid, width, tokens) == (want.uid, want.width, want.caption_tokens.tolist())
    if dtype != "float16":
        first = con.execute(f"SELECT image_emb[1] FROM shard WHERE uid = '{want.uid}'").fetchone()[0]
        assert first == stored_image_emb.reshape(-1)[0]
    assert con.execute("SELECT count(*) FROM shard").fetchone()[0] == len(samples)

    # The values read back decode to (about) what was written.
    decoded = decode_embeddings(stored_image_emb, dtype, store.image_emb_scales(row))
    np.testing.assert_allclose(decoded, want.image_emb, atol=0.02)
