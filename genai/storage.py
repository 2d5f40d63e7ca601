"""The artifact store: one root URI (``file://`` or ``s3://``), atomic writes, Parquet and JSON.

Every artifact is committed whole: single files are serialised in memory and then put in one
operation (a rename on disk, one PUT on S3); multi-file artifacts are written under a temporary
prefix, moved into place, and made visible by writing their manifest last.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from genai.errors import UserError

DEFAULT_STORE = "file://./artifacts"
TMP_PREFIX = ".tmp-"
METADATA_KEY = b"genai"
_SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


class StoreError(UserError, RuntimeError):
    """The store cannot be reached, a key is invalid, or an artifact is missing."""


def redact(text: str) -> str:
    """Replace any credential from the environment that appears in ``text``."""
    for var in _SECRET_VARS:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def resolve_store_uri(uri: str | None = None) -> str:
    """The store URI to use: the argument, else ``$GENAI_STORE``, else ``file://./artifacts``."""
    return uri or os.environ.get("GENAI_STORE") or DEFAULT_STORE


def s3_filesystem(*, connect_timeout: float = 5, read_timeout: float = 60, retries: int = 3):
    """An s3fs filesystem configured from the standard AWS environment, with bounded retries."""
    import s3fs  # 0.3 s: only for an s3:// store

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    fs = s3fs.S3FileSystem(
        endpoint_url=endpoint,
        skip_instance_cache=True,
        use_listings_cache=False,
        config_kwargs={
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retries": {"max_attempts": retries, "mode": "standard"},
        },
    )
    fs.retries = retries  # s3fs's own retry loop around botocore's
    return fs


class ArtifactStore:
    """Read and write artifacts under one root URI; keys are ``/``-separated and relative."""

    def __init__(self, uri: str | None = None, *, check: bool = True) -> None:
        raw = resolve_store_uri(uri)
        parts = urlsplit(raw)
        scheme = parts.scheme or "file"
        if parts.username or parts.password:
            raise StoreError(
                f"store URI for {scheme}://{parts.hostname}{parts.path} carries credentials;"
                " pass them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead"
            )
        if scheme == "file":
            path = (parts.netloc + parts.path) if parts.scheme else raw
            self.protocol = "file"
            self.base = os.path.abspath(os.path.expanduser(path or "."))
            self.uri = f"file://{self.base}"
            self.fs = fsspec.filesystem("file", auto_mkdir=True)
            self.endpoint = None
        elif scheme in ("s3", "s3a"):
            if not parts.netloc:
                raise StoreError(f"store URI {raw!r} has no bucket: use s3://BUCKET[/PREFIX]")
            self.protocol = "s3"
            self.bucket = parts.netloc
            self.base = posixpath.join(parts.netloc, parts.path.strip("/")).rstrip("/")
            self.uri = f"s3://{self.base}"
            self.fs = s3_filesystem()
            self.endpoint = self.fs.client_kwargs.get("endpoint_url") or os.environ.get(
                "AWS_ENDPOINT_URL", "the default AWS endpoint"
            )
            if check:
                self._check_bucket()
        else:
            raise StoreError(f"store URI {raw!r}: scheme {scheme!r} is not one of 'file', 's3'")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    # ------------------------------------------------------------------------------ plumbing
    def _check_bucket(self) -> None:
        try:
            self.fs.info(self.bucket)
        except FileNotFoundError:
            raise StoreError(
                f"store {self.uri}: bucket {self.bucket!r} does not exist at {self.endpoint}"
            ) from None
        except Exception as err:  # botocore / aiohttp errors of every kind
            raise self._error("cannot reach the store", err) from None

    def reachable(self) -> None:
        """Raise a :class:`StoreError` naming the store and its endpoint if it cannot be reached
        (a job that failed inside a library checks this first: a store that went away is named,
        not the library's own trace)."""
        if self.protocol == "s3":
            self._check_bucket()
        elif not os.path.isdir(self.base):
            raise StoreError(f"store {self.uri}: {self.base} is not a folder")

    def _error(self, what: str, err: BaseException, key: str | None = None) -> StoreError:
        where = self.uri if key is None else self.key_uri(key)
        detail = redact(f"{type(err).__name__}: {err}")
        endpoint = f" (endpoint {self.endpoint})" if self.protocol == "s3" else ""
        return StoreError(f"{what}: {where}{endpoint}: {detail}")

    @staticmethod
    def check_key(key: str) -> str:
        """Normalise ``key`` and reject any that could leave the root."""
        if not isinstance(key, str):
            raise StoreError(f"artifact key must be a string, got {type(key).__name__}")
        if "://" in key or key.startswith(("/", "~")) or "\\" in key or ":" in key.split("/")[0]:
            raise StoreError(f"artifact key {key!r} must be relative to the store root")
        parts = [p for p in key.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise StoreError(f"artifact key {key!r} would escape the store root ('..')")
        return "/".join(parts)

    def path(self, key: str = "") -> str:
        """The filesystem path of ``key`` (for fsspec)."""
        key = self.check_key(key)
        return posixpath.join(self.base, key) if key else self.base

    def key_uri(self, key: str = "") -> str:
        """The full URI of ``key``, e.g. ``s3://bucket/prefix/datasets/digits``."""
        key = self.check_key(key)
        return f"{self.uri}/{key}" if key else self.uri

    def arrow_filesystem(self, key: str = "") -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the path of ``key`` in it (for Ray Data and Ray Train)."""
        if self.protocol == "file":
            return pafs.LocalFileSystem(), self.path(key)
        return pafs.PyFileSystem(pafs.FSSpecHandler(self.fs)), self.path(key)

    # ------------------------------------------------------------------------------- queries
    def exists(self, key: str) -> bool:
        try:
            return self.fs.exists(self.path(key))
        except StoreError:
            raise
        except Exception as err:
            raise self._error("cannot check", err, key) from None

    def list(self, prefix: str = "") -> list[str]:
        """Keys of the files under ``prefix`` (recursive, sorted), hiding uncommitted temps."""
        root = self.path(prefix)
        try:
            if not self.fs.exists(root):
                return []
            if self.fs.isfile(root):
                return [self.check_key(prefix)]
            found = self.fs.find(root)
        except Exception as err:
            raise self._error("cannot list", err, prefix) from None
        keys = []
        for full in found:
            rel = posixpath.relpath(full.removeprefix("file://"), self.base)
            if not any(part.startswith(TMP_PREFIX) for part in rel.split("/")):
                keys.append(rel)
        return sorted(keys)

    # -------------------------------------------------------------------------------- writing
    def _put_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        try:
            if self.protocol == "file":
                tmp = _written_beside(path, data)
                try:
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.remove(tmp)
            else:
                self.fs.pipe_file(path, data)  # one PUT: visible whole or not at all
        except Exception as err:
            raise self._error("cannot write", err, key) from None

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write ``key`` whole only if it does not exist: whether this call created it. Of two
        racing callers exactly one gets True (a hard link on disk, If-None-Match on S3)."""
        path = self.path(key)
        try:
            if self.protocol == "file":
                tmp = _written_beside(path, data)
                try:
                    os.link(tmp, path)  # fails if path exists: written whole, or not at all
                    return True
                except FileExistsError:
                    return False
                finally:
                    os.remove(tmp)
            try:
                self.fs.pipe_file(path, data, mode="create")
                return True
            except OSError:  # 412 Precondition Failed (or 409 for a racing conditional write)
                self.fs.invalidate_cache(path)
                if self.fs.exists(path):
                    return False
                raise
        except Exception as err:
            raise self._error("cannot create", err, key) from None

    def write_bytes(self, key: str, data: bytes) -> str:
        self._put_bytes(key, data)
        return self.key_uri(key)

    def put_file(self, key: str, local: str) -> str:
        """Move a local file to ``key`` (a rename on disk where it can, an upload on S3)."""
        path = self.path(key)
        try:
            if self.protocol == "file":
                os.makedirs(posixpath.dirname(path), exist_ok=True)
                shutil.move(local, path)
            else:
                self.fs.put_file(local, path)
        except Exception as err:
            raise self._error("cannot write", err, key) from None
        return self.key_uri(key)

    def write_json(self, key: str, obj: Any) -> str:
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        return self.write_bytes(key, data)

    def write_table(
        self,
        key: str,
        table: pa.Table | pa.RecordBatchReader,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Write a Parquet file atomically; ``metadata`` goes into the schema under ``genai``."""
        schema = table.schema
        if metadata is not None:
            schema = schema.with_metadata(
                {**(schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
            )
        buf = io.BytesIO()
        batches = table.to_batches() if isinstance(table, pa.Table) else table
        with pq.ParquetWriter(buf, schema) as writer:
            for batch in batches:  # a failure here leaves nothing behind: nothing is put yet
                writer.write_table(pa.Table.from_batches([batch], schema=schema))
        return self.write_bytes(key, buf.getvalue())

    # -------------------------------------------------------------------------------- reading
    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            raise StoreError(f"no artifact at {self.key_uri(key)}") from None
        except IsADirectoryError:
            raise StoreError(f"{self.key_uri(key)} is a folder, not a file") from None
        except Exception as err:
            raise self._error("cannot read", err, key) from None

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def read_table(self, key: str, *, columns: list[str] | None = None) -> pa.Table:
        """Read a Parquet file, or every committed ``*.parquet`` under a folder (hive-style)."""
        files = [k for k in self.list(key) if k.endswith(".parquet")]
        if not files:
            raise StoreError(f"no Parquet artifact at {self.key_uri(key)}")
        try:
            if len(files) == 1 and files[0] == self.check_key(key):
                # opened once (one GET on S3): a file rewritten while it is read (a running
                # train's metrics, a sweep's trials) comes whole, old or new; reading by path
                # could mix the footer of one version with the pages of the next
                if self.protocol == "file":
                    source = pa.memory_map(self.path(key))
                else:
                    source = pa.BufferReader(self.fs.cat_file(self.path(key)))
                return pq.read_table(source, columns=columns)
            fs, _ = self.arrow_filesystem()
            dataset = pq.ParquetDataset(
                [self.path(f) for f in files], filesystem=fs, partitioning="hive"
            )
            return dataset.read(columns=columns)
        except Exception as err:
            raise self._error("cannot read", err, key) from None

    def read_schema(self, key: str) -> pa.Schema:
        """The schema (and ``genai`` metadata) of one Parquet file: its footer, no rows."""
        fs, path = self.arrow_filesystem(key)
        try:
            return pq.read_schema(path, filesystem=fs)
        except FileNotFoundError:
            raise StoreError(f"no artifact at {self.key_uri(key)}") from None
        except Exception as err:
            raise self._error("cannot read", err, key) from None

    @staticmethod
    def table_metadata(table: pa.Table | pa.Schema) -> dict[str, Any]:
        """The ``genai`` schema metadata of a table written by this store (or ``{}``)."""
        meta = (table.schema if isinstance(table, pa.Table) else table).metadata or {}
        raw = meta.get(METADATA_KEY)
        return json.loads(raw) if raw else {}

    # ------------------------------------------------------------------- multi-file artifacts
    def delete(self, prefix: str) -> None:
        path = self.path(prefix)
        if not self.check_key(prefix):
            raise StoreError("refusing to delete the whole store root")
        try:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except Exception as err:
            raise self._error("cannot delete", err, prefix) from None

    @contextlib.contextmanager
    def staging(self, final: str) -> Iterator[str]:
        """A temporary key to write a multi-file artifact under; moved to ``final`` on success.

        On any error the temporary files are removed and ``final`` is left as it was. The caller
        makes the artifact visible by writing its manifest after the block (see ``commit``).
        """
        final = self.check_key(final)
        parent, name = posixpath.split(final)
        tmp = posixpath.join(parent, f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:12]}")
        try:
            yield tmp
        except BaseException:
            with contextlib.suppress(Exception):
                self.delete(tmp)
            raise
        self._move(tmp, final)

    def _move(self, src: str, dst: str) -> None:
        try:
            if self.fs.exists(self.path(dst)):  # a leftover without a manifest: never visible
                self.fs.rm(self.path(dst), recursive=True)
            if self.protocol == "file":
                os.makedirs(posixpath.dirname(self.path(dst)), exist_ok=True)
                os.rename(self.path(src), self.path(dst))
            else:  # S3 has no rename: copy every object, then drop the temporaries
                src_root, dst_root = self.path(src), self.path(dst)
                files = self.fs.find(src_root)
                targets = [dst_root + f.removeprefix(src_root) for f in files]
                self.fs.copy(files, targets)
                self.fs.rm(src_root, recursive=True)
        except Exception as err:
            with contextlib.suppress(Exception):
                self.delete(src)
            raise self._error("cannot commit", err, dst) from None


def _written_beside(path: str, data: bytes) -> str:
    """``data`` written and synced to a temporary file next to ``path`` (made visible by the
    caller's rename or link, one step that readers see whole or not at all)."""
    directory, name = posixpath.split(path)
    os.makedirs(directory, exist_ok=True)
    tmp = posixpath.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex}-{name}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp
