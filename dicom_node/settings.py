"""The node's one settings object: defaults, then a TOML/YAML file, then ``BLSNODE_*`` variables.

Built once at start-up (``load_settings``) and passed down explicitly; nothing reads the
environment or the file later. Nested sections are set from the environment with a double
underscore, e.g. ``BLSNODE_NETWORK__PORT=11113``.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydicom.uid
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydicom.uid import UID

ENV_PREFIX = "BLSNODE_"
DEFAULT_DATA_DIR = Path("blsnode-data")

# DICOM AE titles: 1-16 characters of the default character repertoire, no backslash.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
# A UID root followed by "."; at most 54 characters so ten digits or more remain (PS3.5 9.1).
_UID_PREFIX = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.$")
UID_PREFIX_MAX_LENGTH = 54

_UID_TEXT = re.compile(r"^[0-9.]{1,64}$")


# CR, DX for presentation, DX for processing: what a hand radiograph arrives as.
HAND_RADIOGRAPH_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1",
)


def validate_transfer_syntax(value: str) -> str:
    """Return the UID of a transfer syntax given by UID or pydicom keyword, else ``ValueError``."""
    text = value.strip()
    if _UID_TEXT.match(text):
        uid = UID(text)
    else:
        found = getattr(pydicom.uid, text, None)
        uid = found if isinstance(found, UID) else UID("0")
    if not uid.is_transfer_syntax:
        raise ValueError(f"unknown transfer syntax {value!r}")
    return str(uid)


def is_ae_title(value: str) -> bool:
    """True if ``value`` (stripped) is a legal AE title."""
    return bool(_AE_TITLE.match(value.strip()))


def validate_ae_title(value: str) -> str:
    """Return ``value`` stripped if it is a legal AE title, else raise ``ValueError``."""
    stripped = value.strip()
    if not stripped or not _AE_TITLE.match(stripped):
        raise ValueError(f"invalid AE title {value!r}: 1-16 printable ASCII characters, no '\\'")
    return stripped


def validate_uid_prefix(value: str) -> str:
    """Return ``value`` if it can start a UID (a root ending in '.'), else raise ``ValueError``."""
    if len(value) > UID_PREFIX_MAX_LENGTH or not _UID_PREFIX.match(value):
        raise ValueError(
            f"invalid UID prefix {value!r}: digits and dots, no leading zeros, ending in '.', "
            f"at most {UID_PREFIX_MAX_LENGTH} characters"
        )
    return value


class _Section(BaseModel):
    """Base of every settings section: unknown keys are errors, so typos surface at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LogFormat(StrEnum):
    """How log records are written."""

    PLAIN = "plain"
    JSON = "json"


class LoggingSettings(_Section):
    """Where and how the node logs."""

    level: str = "INFO"
    format: LogFormat = LogFormat.PLAIN
    to_file: bool = True

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return upper


class AllowedCaller(_Section):
    """One calling AE that may associate, optionally pinned to a host address."""

    ae_title: str
    host: str | None = None

    @field_validator("ae_title")
    @classmethod
    def _legal_ae_title(cls, value: str) -> str:
        return validate_ae_title(value)


class TLSSettings(_Section):
    """Optional TLS on the DICOM port (certificate paths on disk)."""

    enabled: bool = False
    certificate: Path | None = None
    private_key: Path | None = None
    ca_certificates: Path | None = None
    require_client_certificate: bool = False


class NetworkSettings(_Section):
    """The DICOM listener: who we are, where we listen, who may call."""

    ae_title: str = "BLSNODE"
    host: str = "0.0.0.0"
    port: int = Field(default=11112, ge=1, le=65535)
    require_called_ae_title: bool = True
    allowed_callers: list[AllowedCaller] = Field(default_factory=list)
    max_associations: int = Field(default=10, ge=1)
    # Associations one calling host may hold at once: a single host (or one that lost
    # count of its connections) cannot take every slot.
    max_associations_per_host: int = Field(default=5, ge=1)
    # A PDU must arrive whole within this many seconds of its first byte (a 1 MiB PDU
    # needs 35 kB/s): a peer trickling a byte every few seconds, each read within
    # ``network_timeout_s``, no longer holds its slot for as long as it likes.
    pdu_deadline_s: float = Field(default=30.0, gt=0)
    # A connection must send its A-ASSOCIATE-RQ within this many seconds (the ARTIM
    # timer of PS3.8 9.1.5, which pynetdicom sets to the ACSE timeout): a caller sends it
    # at once, so a connection silent this long is a port scan, a stale load balancer
    # probe or an attacker holding sockets, and is closed.
    association_request_timeout_s: float = Field(default=10.0, gt=0)
    # Every DIMSE message (a C-STORE request with its data set) must arrive within
    # ``transfer_grace_s`` of its first fragment plus one second per
    # ``min_transfer_rate_bytes_s`` bytes, or the association is aborted: a sender of
    # small whole PDUs every few seconds (each within ``pdu_deadline_s``) no longer holds
    # its slot for as long as it likes. 100 kB/s (0.8 Mbit/s) takes a 30 MB radiograph
    # in 5 minutes; lower it for callers on slower links.
    min_transfer_rate_bytes_s: float = Field(default=100_000.0, gt=0)
    transfer_grace_s: float = Field(default=10.0, ge=0)
    # An association that has had no instance accepted (C-STORE answered 0x0000) for
    # this many seconds is aborted (0 disables): the network timeout restarts with every
    # message, so a peer sending a C-ECHO, or a refused C-STORE, now and then held its
    # slot for good. A modality sends a study's images
    # back to back and opens a new association (milliseconds) for the next study; 120 s
    # is twice the network timeout, so a sender pausing between images keeps its slot.
    # A message being received is exempt: ``min_transfer_rate_bytes_s`` paces it.
    max_idle_association_s: float = Field(default=120.0, ge=0)
    acse_timeout_s: float = Field(default=30.0, gt=0)
    dimse_timeout_s: float = Field(default=60.0, gt=0)
    network_timeout_s: float = Field(default=60.0, gt=0)
    tls: TLSSettings = Field(default_factory=TLSSettings)

    @field_validator("ae_title")
    @classmethod
    def _legal_ae_title(cls, value: str) -> str:
        return validate_ae_title(value)


class DuplicatePolicy(StrEnum):
    """What a C-STORE of a known SOP Instance UID with other content gets.

    An identical resend is always a success that changes nothing.
    """

    # Keep the first instance; answer warning 0xB006 and log the resend at INFO.
    IGNORE = "ignore"
    # Refuse the resend with 0x0111 (duplicate SOP instance) and log it at INFO.
    REJECT = "reject"
    # Store the resend in place of the first (same study and series only), queue its
    # finished job again; answer 0x0000 and log it at INFO. Results already sent are
    # not sent again: their UIDs derive from the source UID, which did not change.
    REPLACE = "replace"


class StorageSettings(_Section):
    """The spool of received instances and the disk guard."""

    min_free_bytes: int = Field(default=1 << 30, ge=0)
    retention_days: int | None = Field(default=None, ge=1)
    # The largest data set accepted, as received or, if deflated, once inflated; a larger
    # one is refused (0xA700) before it is inflated further. A hand radiograph is a few
    # tens of MB; a deflated megabyte of zeros can claim gigabytes.
    max_dataset_bytes: int = Field(default=256 << 20, ge=1 << 16)
    # Resends of a known SOP Instance UID with other content: the default, and per
    # calling AE title.
    duplicates: DuplicatePolicy = DuplicatePolicy.IGNORE
    duplicates_by_caller: dict[str, DuplicatePolicy] = Field(default_factory=dict)

    def duplicate_policy(self, calling_ae_title: str | None) -> DuplicatePolicy:
        """The policy for resends from ``calling_ae_title``."""
        if calling_ae_title is None:
            return self.duplicates
        return self.duplicates_by_caller.get(calling_ae_title.strip(), self.duplicates)


class SQLiteSynchronous(StrEnum):
    """SQLite's ``PRAGMA synchronous`` in WAL mode."""

    # A commit survives a crash of the process; after a power cut the last commits may
    # be missing, and ``serve`` re-books their (fsynced) spool files at start-up.
    NORMAL = "normal"
    # Every commit is fsynced too: one more disk flush per received instance.
    FULL = "full"


class DatabaseSettings(_Section):
    """Bookkeeping database; SQLite in the data directory unless a URL is given."""

    url: str | None = None
    sqlite_synchronous: SQLiteSynchronous = SQLiteSynchronous.NORMAL
    # Received instances' rows wait at most this long to be committed together (the
    # spooled file is durable before the C-STORE is answered; see receive.booking): a
    # job starts that much later at most, and one sender's burst costs a commit per
    # quarter second instead of one per instance or two (measured by
    # benchmarks/bench_ingest.py, docs/operations-node.md). At 0 a commit starts as soon
    # as a row waits, and the rows that arrive meanwhile go together into the next.
    group_commit_s: float = Field(default=0.25, ge=0)


class BrokerSettings(_Section):
    """Celery broker; a filesystem queue in the data directory unless a URL is given.

    The database, not the broker, is the record of work: a job or dispatch that could not
    be published stays unpublished and the sweeper in ``serve`` publishes it again.
    """

    url: str | None = None
    result_backend: str | None = None
    connect_timeout_s: float = Field(default=3.0, gt=0)
    sweep_interval_s: float = Field(default=10.0, gt=0)
    # A message can vanish with a broker that keeps none on disk (Redis without
    # persistence, a crashed filesystem consumer); tasks are idempotent, so publishing a
    # job that is still queued after this long again is safe.
    republish_after_s: float = Field(default=900.0, gt=0)


class HTTPSettings(_Section):
    """Health and Prometheus metrics endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9110, ge=0, le=65535)
    # A client that sends nothing for this long is disconnected (its thread ends).
    client_timeout_s: float = Field(default=10.0, gt=0)


class WebSettings(_Section):
    """The web dashboard: its own port, loopback by default, optional TLS.

    ``enabled`` unset: the dashboard runs once at least one user exists (``blsnode users
    add``), so a node without users exposes no login page at all.
    """

    enabled: bool | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=9120, ge=0, le=65535)
    certificate: Path | None = None
    private_key: Path | None = None
    session_hours: float = Field(default=8.0, gt=0)
    # Failed logins from one address (and for one name) within the window before refusal.
    login_attempts: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)

    @property
    def tls(self) -> bool:
        """True if both a certificate and its private key are given."""
        return self.certificate is not None and self.private_key is not None

    @model_validator(mode="after")
    def _pair(self) -> WebSettings:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("web TLS needs both certificate and private_key")
        return self


class ModelSettings(_Section):
    """Where model checkpoints live and which device runs them."""

    registry_dir: Path | None = None
    device: str = "cpu"
    # False: only models registered and promoted at this site run (a site policy that
    # every model in use was validated locally); the weights in the package are ignored.
    use_shipped_weights: bool = True


class TrainingSettings(_Section):
    """Retraining from the command line: the reviewed joint manifests and where runs go."""

    manifests: list[Path] = Field(default_factory=list)
    runs_dir: Path | None = None


class SendWhat(StrEnum):
    """What a destination receives."""

    RESULTS = "results"
    ORIGINALS = "originals"
    ALL = "all"


class DestinationProtocol(StrEnum):
    """How results reach a destination."""

    DIMSE = "dimse"  # C-STORE over an association (TLS when ``tls.enabled``)
    DICOMWEB = "dicomweb"  # STOW-RS to ``url``


class DestinationTLSSettings(_Section):
    """TLS on outgoing associations: the peer's CA, and our certificate if it wants one."""

    enabled: bool = False
    ca_certificates: Path | None = None  # None: the system's trusted CAs
    certificate: Path | None = None
    private_key: Path | None = None
    check_hostname: bool = True


class ResultKind(StrEnum):
    """Kinds of derived object a destination may take (the values of ``db.OutputKind``)."""

    SEG = "seg"
    SC = "sc"
    SR = "sr"
    PR = "pr"


class DestinationSettings(_Section):
    """A peer that results and/or originals are sent to: DIMSE C-STORE or DICOMweb STOW-RS.

    DIMSE needs ``ae_title``, ``host`` and ``port`` (and may use ``tls``); DICOMweb needs
    ``url``, the service's base (STOW-RS posts to ``url + /studies``), and may use
    ``username`` and ``password`` (HTTP basic authentication) and ``ca_certificates``.
    """

    name: str = Field(min_length=1, max_length=64)
    protocol: DestinationProtocol = DestinationProtocol.DIMSE
    ae_title: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: DestinationTLSSettings = Field(default_factory=DestinationTLSSettings)
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certificates: Path | None = None
    send: SendWhat = SendWhat.RESULTS
    transfer_syntax: str | None = None
    # Which results it takes (a viewer that shows only presentation states: ["pr"]);
    # None: every kind (also for those added with the command line or the dashboard).
    results: list[ResultKind] | None = None

    @field_validator("ae_title")
    @classmethod
    def _legal_ae_title(cls, value: str | None) -> str | None:
        return None if value is None else validate_ae_title(value)

    @field_validator("results")
    @classmethod
    def _some_results(cls, value: list[ResultKind] | None) -> list[ResultKind] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("results lists the kinds taken; leave it out for every kind")
        return [kind for kind in ResultKind if kind in value]  # each once, in a fixed order

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"DICOMweb url must start with http:// or https://, not {value!r}")
        return None if value is None else value.rstrip("/")

    @model_validator(mode="after")
    def _complete_for_its_protocol(self) -> DestinationSettings:
        if self.protocol is DestinationProtocol.DIMSE:
            missing = [k for k in ("ae_title", "host", "port") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"destination {self.name!r} (dimse) needs {', '.join(missing)}")
            if self.url is not None:
                raise ValueError(f"destination {self.name!r}: url is for protocol = 'dicomweb'")
        elif self.url is None:
            raise ValueError(f"destination {self.name!r} (dicomweb) needs url")
        return self

    def dimse_address(self) -> tuple[str, int, str]:
        """Host, port and AE title of a DIMSE destination; ``ValueError`` for DICOMweb."""
        if self.host is None or self.port is None or self.ae_title is None:
            raise ValueError(f"destination {self.name!r} is not a DIMSE destination")
        return self.host, self.port, self.ae_title

    @field_validator("transfer_syntax")
    @classmethod
    def _known_transfer_syntax(cls, value: str | None) -> str | None:
        return None if value is None else validate_transfer_syntax(value)


class DispatchSettings(_Section):
    """Retries of C-STORE to destinations: exponential backoff, then dead letter."""

    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_s: float = Field(default=30.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    # A dispatch left "sending" this long without progress belongs to a sender that died;
    # it is sent again. A live sender renews its batch after every file, so this only
    # has to outlast one C-STORE (network.dimse_timeout_s and a file's transfer).
    stale_after_s: float = Field(default=120.0, gt=0)
    # Due files of one destination sent over one association, at most this many at once.
    batch_size: int = Field(default=50, ge=1, le=1000)


class RuleSettings(_Section):
    """Which received instances a rule matches, and what happens to them.

    Each list is a set of accepted values (case-insensitive); an empty list accepts
    anything, and the value ``""`` accepts an instance where the attribute is absent or
    empty. Regular expressions are searched case-insensitively. The first rule that
    matches decides; an instance no rule matches is stored and nothing else.
    """

    name: str = Field(min_length=1, max_length=64)
    process: bool = True
    modalities: list[str] = Field(default_factory=lambda: ["CR", "DX"])
    body_parts: list[str] = Field(default_factory=lambda: ["HAND"])
    view_positions: list[str] = Field(default_factory=lambda: ["PA", ""])
    sop_classes: list[str] = Field(default_factory=lambda: list(HAND_RADIOGRAPH_SOP_CLASSES))
    series_description_regex: str | None = None
    study_description_regex: str | None = None
    exclude_description_regex: str | None = None
    # None: every destination whose ``send`` covers results / originals; a list: those names.
    results_to: list[str] | None = None
    originals_to: list[str] | None = None

    @field_validator(
        "series_description_regex", "study_description_regex", "exclude_description_regex"
    )
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regular expression {value!r}: {error}") from error
        return value


class WorkerSettings(_Section):
    """Processing workers; ``serve`` starts one beside the listener when embedded."""

    embedded: bool = True
    concurrency: int = Field(default=1, ge=1)
    queues: list[str] = Field(default_factory=lambda: ["process", "dispatch"])
    # A worker renews the lease of its running job five times per lease; a job whose
    # lease ran out lost its worker (killed, out of memory): the sweeper queues it again.
    job_lease_s: float = Field(default=300.0, ge=1)
    # Workers lost on one job this many times: the job fails as poison instead of killing
    # more (and stalling the queue behind the restarts); ``blsnode jobs retry`` runs it again.
    max_job_attempts: int = Field(default=1, ge=1)
    # The largest image decoded: Rows x Columns x frames x Bits Allocated / 8, checked
    # from the header before any pixel is decoded (decoding needs about ten times as
    # much memory). A 43 x 43 cm detector at 0.1 mm is 37 MB.
    max_image_bytes: int = Field(default=64 << 20, ge=1 << 10)


class OutputSettings(_Section):
    """Naming of the derived DICOM objects; UIDs derive from the source and the model."""

    uid_prefix: str | None = None
    manufacturer: str = "blsgan-node"
    device_serial_number: str = Field(default="1", min_length=1, max_length=64)
    seg_series_number: int = Field(default=9101, ge=1)
    seg_series_description: str = "BLS-GAN MCP bone segmentation"
    sc_series_number: int = Field(default=9102, ge=1)
    sc_series_description: str = "BLS-GAN MCP bone layers"
    sr_series_number: int = Field(default=9103, ge=1)
    sr_series_description: str = "BLS-GAN MCP measurements"
    pr_series_number: int = Field(default=9104, ge=1)
    pr_series_description: str = "BLS-GAN MCP bone outlines"

    @field_validator("uid_prefix")
    @classmethod
    def _legal_uid_prefix(cls, value: str | None) -> str | None:
        return None if value is None else validate_uid_prefix(value)


class PriorPacsSettings(_Section):
    """A PACS asked for the patient's previous radiograph (Study Root Query/Retrieve)."""

    ae_title: str = Field(min_length=1, max_length=16)
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    timeout_s: float = Field(default=30.0, gt=0)


class FollowUpSettings(_Section):
    """Linking a patient's radiographs for follow-up, without storing who the patient is.

    With ``site_secret`` set, each processed radiograph gets a keyed pseudonym,
    HMAC-SHA256(secret, Patient ID + Issuer of Patient ID): the same patient at this site
    always gets the same pseudonym, and without the secret it cannot be traced back or
    recomputed elsewhere. Without a secret no pseudonym is kept and no prior is looked up.
    """

    site_secret: SecretStr | None = Field(default=None, min_length=16)
    # Where to look for a prior this node never processed (C-FIND, then C-MOVE to
    # ``network.ae_title``, which the PACS must know as a move destination).
    pacs: PriorPacsSettings | None = None


class Settings(BaseSettings):
    """Effective configuration of one node process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = DEFAULT_DATA_DIR
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    http: HTTPSettings = Field(default_factory=HTTPSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    destinations: list[DestinationSettings] = Field(default_factory=list)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    rules: list[RuleSettings] = Field(default_factory=lambda: [RuleSettings(name="hand-pa")])
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    followup: FollowUpSettings = Field(default_factory=FollowUpSettings)

    @field_validator("destinations")
    @classmethod
    def _unique_destination_names(
        cls, value: list[DestinationSettings]
    ) -> list[DestinationSettings]:
        names = [destination.name for destination in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"destination names must be unique: {duplicates}")
        return value

    @property
    def spool_dir(self) -> Path:
        """Directory of received instances."""
        return self.data_dir / "spool"

    @property
    def output_dir(self) -> Path:
        """Directory of the derived objects workers write (one folder per source image)."""
        return self.data_dir / "outputs"

    @property
    def layers_dir(self) -> Path:
        """Directory of each processed radiograph's joint layers, a follow-up's baseline."""
        return self.data_dir / "layers"

    @property
    def log_dir(self) -> Path:
        """Directory of log files."""
        return self.data_dir / "logs"

    @property
    def database_url(self) -> str:
        """The configured database URL, or SQLite in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'blsnode.db').resolve()}"

    @property
    def broker_url(self) -> str:
        """The configured broker URL, or kombu's filesystem transport (no server needed)."""
        return self.broker.url or "filesystem://"

    @property
    def broker_queue_dir(self) -> Path:
        """Folder of the filesystem broker's messages (used when no broker URL is set)."""
        return self.data_dir / "queue"

    @property
    def model_registry_dir(self) -> Path:
        """Registry of model checkpoints."""
        return self.models.registry_dir or self.data_dir / "models"

    @property
    def training_runs_dir(self) -> Path:
        """Folder of training runs (checkpoints, logs, plots)."""
        return self.training.runs_dir or self.data_dir / "runs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (command-line flags) win over the environment; the file comes
        # in below both through ``load_settings``.
        return (init_settings, env_settings)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML or YAML settings file into a mapping; raise ``ValueError`` if unusable."""
    if not path.is_file():
        raise ValueError(f"configuration file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            raise ValueError(f"configuration file {path}: use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"configuration file {path} is not valid: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"configuration file {path} must hold a mapping at the top level")
    return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: ``overrides`` > ``BLSNODE_*`` environment > file > defaults."""
    file_values = read_config_file(config_file) if config_file is not None else {}

    class _FileBackedSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            file_settings = InitSettingsSource(settings_cls, init_kwargs=file_values)
            return (init_settings, env_settings, file_settings)

    given = {key: value for key, value in overrides.items() if value is not None}
    return _FileBackedSettings(**given)


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):(?P<secret>[^@/]+)@")


def mask_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs."""
    return _URL_PASSWORD.sub(r"\g<scheme>:***@", url)


def effective_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data for display, with derived paths filled in and secrets masked."""
    data = settings.model_dump(mode="json")
    data["database"]["url"] = mask_url(settings.database_url)
    data["broker"]["url"] = mask_url(settings.broker_url)
    if settings.broker.result_backend:
        data["broker"]["result_backend"] = mask_url(settings.broker.result_backend)
    data["models"]["registry_dir"] = str(settings.model_registry_dir)
    data["training"]["runs_dir"] = str(settings.training_runs_dir)
    data["paths"] = {
        "spool_dir": str(settings.spool_dir),
        "output_dir": str(settings.output_dir),
        "layers_dir": str(settings.layers_dir),
        "log_dir": str(settings.log_dir),
        "broker_queue_dir": str(settings.broker_queue_dir),
    }
    return data
