"""What every kind of storage answers, in one place per cloud (the modules beside this one).

A cloud is met in four places: the manifest store opens and writes it (``prepare``,
``read_options``, ``create``, ``replace``, ``pointer_lock``); the loader asks which objects
changed (``marker``); the Airflow side opens it with an Airflow connection
(``connection_scheme``, ``airflow_provider``); and a task finds its flow's Metaflow datastore
there (``task_config`` at publish, ``package_location`` on the worker). Adding a cloud is one
module with a :class:`Cloud` and a line in :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

# What identifies an object's content in a listing, in the order a marker lists them, for a
# file system that no cloud module describes.
GENERIC_MARKER_KEYS = ("ETag", "etag", "generation", "md5Hash")
GENERIC_FALLBACK_KEYS = ("mtime", "ino", "LastModified", "last_modified", "created")


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def named(error: BaseException, *names: str) -> bool:
    """Whether ``error`` is an instance of a class called one of ``names`` (a client's error,
    matched without importing the client)."""
    return any(klass.__name__ in names for klass in type(error).__mro__)


def one_line(error: BaseException) -> str:
    """An error's message on one line (a server's answer can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


class WriteConflict(Exception):
    """A conditional write lost to another writer: read again and retry."""


class Cloud:
    """A file system that no cloud module describes (``memory://``...): plain fsspec calls,
    last writer wins. Each cloud module overrides what its store does better."""

    name: ClassVar[str] = "other"
    """Metaflow's name of the datastore on this cloud (``--datastore``)."""
    protocols: ClassVar[frozenset[str]] = frozenset()
    """The fsspec protocols of its URLs."""
    connection_scheme: ClassVar[str | None] = None
    """The URL scheme whose file system an Airflow provider registers (ObjectStoragePath)."""
    airflow_provider: ClassVar[str | None] = None
    """The Airflow provider package that registers it."""
    object_errors: ClassVar[tuple[type[OSError], ...]] = (FileNotFoundError, PermissionError)
    """Errors of reading one object that are that object's problem, not the store's."""
    marker_keys: ClassVar[tuple[str, ...]] = GENERIC_MARKER_KEYS
    """Keys of an object's listing entry that change whenever its content does."""
    sysroot_variable: ClassVar[str | None] = None
    """The Metaflow variable that names the datastore's root."""
    task_settings: ClassVar[Mapping[str, str]] = {}
    """Metaflow variable → the name of its value in Metaflow's configuration module."""
    task_passthrough: ClassVar[tuple[str, ...]] = ()
    """Variables the publishing environment hands on to the tasks as they are."""
    has_buckets: ClassVar[bool] = False
    """Whether a URL's first path part is a bucket (a container) that must exist already."""
    bucket_word: ClassVar[str] = "bucket"
    """What the cloud calls it."""
    noisy_loggers: ClassVar[tuple[str, ...]] = ()
    # Credential errors of a cloud whose Metaflow datastore has its own client provider.
    provider_credential_errors: ClassVar[tuple[str, ...]] = ()
    """Loggers of its client that print a traceback for a failure a command reports in one
    line (``metaflow-airflow --verbose`` lets them)."""

    # --- failures --------------------------------------------------------------------------

    def explain(self, error: BaseException, *, datastore: bool = False) -> str:
        """A failure of this store in plain words, with what fixes it: what a command prints
        after the store's URL instead of the client's traceback (``datastore``: of Metaflow's
        datastore on this cloud, which Metaflow's configuration reaches, not the options)."""
        for cause in causes(error):
            if isinstance(cause, PermissionError):
                return (
                    f"permission denied ({one_line(cause)}); use credentials that may read and "
                    "write it"
                )
            if isinstance(cause, (ConnectionError, TimeoutError)):
                return f"cannot connect ({one_line(cause)}); check the network and the endpoint"
        return one_line(error)

    # --- the manifest store ------------------------------------------------------------------

    def prepare(self, fs: Any) -> None:
        """Set up a new file system object's client, before its first request."""

    def read_options(self, fs: Any) -> dict[str, Any]:
        """Keyword arguments for ``fs.cat`` of small objects."""
        return {}

    def read_many(
        self, fs: Any, paths: list[str], options: Mapping[str, Any]
    ) -> dict[str, bytes | Exception]:
        """The bytes of each object, or the exception its read raised, in one bulk request."""
        return fs.cat(paths, on_error="return", **options)

    def create(self, fs: Any, path: str, data: bytes) -> None:
        """Write ``path`` only if it does not exist (else raise FileExistsError)."""
        fs.pipe_file(path, data, mode="create")

    def replace(self, fs: Any, path: str, data: bytes, tag: str | None) -> None:
        """Replace ``path`` only if it still has the change tag ``tag`` (``None``: only if it
        does not exist), where the store can enforce it; raise :class:`WriteConflict` if not."""
        try:
            if tag is None:
                fs.pipe_file(path, data, mode="create")
            else:
                self.replace_if_unchanged(fs, path, data, tag)
        except (FileExistsError, FileNotFoundError) as exc:  # created, or deleted, meanwhile
            raise WriteConflict() from exc

    def replace_if_unchanged(self, fs: Any, path: str, data: bytes, tag: str) -> None:
        """Replace an object that has ``tag``: unconditionally here (last writer wins)."""
        fs.pipe_file(path, data)

    def pointer_lock(self, folder: str) -> AbstractContextManager[None]:
        """What serializes the pointer moves of one DAG besides conditional writes."""
        return nullcontext()

    def change_tag(self, info: Mapping[str, Any]) -> str:
        """The tag that :meth:`replace` compares, of an object that exists (its marker where
        the store has no ETag: never ``None``, which means "does not exist")."""
        return info.get("ETag") or info.get("etag") or self.marker(info)

    # --- the loader ----------------------------------------------------------------------------

    def marker(self, info: Mapping[str, Any]) -> str:
        """What identifies this object's content in a listing (with its size)."""
        identity = [str(info[k]) for k in self.marker_keys if info.get(k)]
        if not identity:  # a listing without them: its times
            identity = [str(info[k]) for k in GENERIC_FALLBACK_KEYS if info.get(k) is not None]
        return "|".join([*identity, str(info.get("size"))])

    # --- a task --------------------------------------------------------------------------------

    def task_config(
        self, root: str, metaflow_config: Any, environ: Mapping[str, str]
    ) -> dict[str, Any]:
        """The Metaflow configuration a task needs to find a datastore rooted at ``root``
        (``metaflow_config`` is Metaflow's configuration module, read at publish)."""
        env: dict[str, Any] = {self.sysroot_variable: root} if self.sysroot_variable else {}
        for variable, attribute in self.task_settings.items():
            env[variable] = getattr(metaflow_config, attribute)
        env.update({var: environ.get(var) for var in self.task_passthrough})
        return env

    def probe_conclusive(self, error: BaseException) -> bool:
        """Whether a failed probe of a Metaflow datastore means Metaflow fails too: not when
        only our credentials were refused, where Metaflow authenticates through a client
        provider of its own (``METAFLOW_DEFAULT_*_CLIENT_PROVIDER``)."""
        return not any(named(cause, *self.provider_credential_errors) for cause in causes(error))

    def probe_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` for one quick request that checks the store answers (few retries)."""
        return dict(options)

    def package_location(self, url: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """The code package ``url`` as an fsspec URL with the options that reach it, given the
        Metaflow configuration ``env`` of the manifest; credentials are the worker's own."""
        return url, {}
