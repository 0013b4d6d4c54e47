"""The electronic signature of the final PDF (PAdES) and its verification.

One interface, :class:`Signer`: ``await signer.sign(pdf_bytes, signer_name=...,
capacity=..., reason=..., location=..., when=...)`` returns the signed PDF or raises
:class:`SigningError` with an Indonesian message that can be shown as it is. The local
implementation, :class:`Pkcs12Signer`, signs with the office's certificate (a PKCS#12
file, its passphrase from the config or ``SOPBOT_SIGNING_PASSPHRASE``) with pyHanko:
PAdES baseline B-B, or B-T when ``[signing] timestamp_url`` names an RFC 3161 time-stamp
authority. The visible appearance sits in the signature block of the PDF
(:class:`SignatureBox`, reported by the PDF builder) and says who signed, in which
capacity and when, in the office's time zone.

:func:`check_pdf` validates the PAdES signature of a PDF someone received, with
pyHanko's validator against the configured trust roots; :func:`make_demo_certificates`
makes the throw-away CA and signer certificate of ``sopbot demo`` (DATA CONTOH).

pyHanko's synchronous calls run their own event loop, so every call here runs in a
worker thread (``asyncio.to_thread``): the bot's loop never waits for a signature.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger(__name__)


class _OneLine(logging.Filter):
    """pyHanko logs a certificate without a trusted chain as a warning with a whole
    traceback; the warning line says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("pyhanko.sign.validation.generic_cms").addFilter(_OneLine())

ENV_PASSPHRASE = "SOPBOT_SIGNING_PASSPHRASE"
ENV_PKCS12 = "SOPBOT_SIGNING_PKCS12"
ENV_GATEWAY_PASSWORD = "SOPBOT_TTE_GATEWAY_PASSWORD"
FIELD_NAME = "TandaTanganKepala"
MM = 72 / 25.4  # PDF points per millimetre


class SigningError(Exception):
    """The document could not be signed; ``str(exc)`` is a message for people."""


class WrongPassphrase(SigningError):
    """The TTE gateway refused the person's passphrase: they may send it again."""


@dataclass(frozen=True)
class SignatureBox:
    """Where the visible signature goes: page index (0-based) and a rectangle in mm
    from the top-left corner of the page (the PDF builder's coordinates)."""

    page: int
    x: float
    y: float
    w: float
    h: float
    page_height: float

    def pdf_rect(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in PDF points, origin at the bottom-left."""
        x1, x2 = self.x * MM, (self.x + self.w) * MM
        y1 = (self.page_height - self.y - self.h) * MM
        y2 = (self.page_height - self.y) * MM
        return round(x1), round(y1), round(x2), round(y2)


class Signer(Protocol):
    """Signs a PDF in the name of one person (their own name and capacity)."""

    description: str

    async def sign(self, pdf_bytes: bytes, *, signer_name: str, capacity: str, reason: str,
                   location: str, when: datetime, box: SignatureBox | None = None,
                   signing_time: datetime | None = None) -> bytes:
        """``when``: the time shown in the appearance (the approval); ``signing_time``:
        the signature's own time (/M), from the bot's clock (None: the system's)."""
        ...


def appearance_text(signer_name: str, capacity: str, when: datetime) -> str:
    """"Ditandatangani secara elektronik oleh NAME, CAPACITY, 7 Oktober 2024 10.15 WIB"
    on four lines (``when`` already in the office's zone)."""
    from reports.numbers import format_date, zone_label

    stamp = f"{format_date(when.date())} {when:%H.%M} {zone_label(when)}".strip()
    return "\n".join(line for line in ("Ditandatangani secara elektronik oleh",
                                       signer_name, capacity, stamp) if line)


def _clock_pdf_signer():
    from pyhanko.sign import signers

    class ClockPdfSigner(signers.PdfSigner):
        """pyHanko's PdfSigner with the signing time taken from the bot's clock.

        pyHanko reads the time once, in the signing session
        (``PdfSigningSession.system_time``: the signature dictionary's /M and the
        appearance's timestamp), from the system clock; ``sign_pdf`` has no parameter
        for it, so the session is given the bot's time right after it is made."""

        system_time: datetime | None = None

        def init_signing_session(self, pdf_out, existing_fields_only=False):
            session = super().init_signing_session(pdf_out, existing_fields_only)
            if self.system_time is not None:
                session.system_time = self.system_time
            return session

    return ClockPdfSigner


def _ClockPdfSigner(*args, **kwargs):
    global _CLOCK_SIGNER_CLASS
    if _CLOCK_SIGNER_CLASS is None:
        _CLOCK_SIGNER_CLASS = _clock_pdf_signer()
    return _CLOCK_SIGNER_CLASS(*args, **kwargs)


_CLOCK_SIGNER_CLASS = None


class Pkcs12Signer:
    """PAdES signature with a PKCS#12 certificate held by the office."""

    def __init__(self, path: str | Path, passphrase: str | None, *,
                 timestamp_url: str = "") -> None:
        from pyhanko.sign import signers

        self.path = Path(path)
        if not self.path.is_file():
            raise SigningError(f"Berkas sertifikat {self.path} tidak ditemukan "
                               "([signing] pkcs12_path).")
        data = self.path.read_bytes()
        try:
            self._signer = signers.SimpleSigner.load_pkcs12_data(
                data, other_certs=[], passphrase=passphrase.encode() if passphrase else None)
        except Exception as exc:  # pyHanko/cryptography name the cause in English
            raise SigningError("Sertifikat PKCS#12 tidak dapat dibuka: frasa sandi salah "
                               f"atau berkas rusak ({type(exc).__name__}).") from None
        if self._signer is None or self._signer.signing_cert is None:
            raise SigningError("Sertifikat PKCS#12 tidak dapat dibuka: frasa sandi salah "
                               "atau berkas rusak.")
        self.timestamp_url = timestamp_url
        cert = self._signer.signing_cert
        self.subject = cert.subject.human_friendly
        self.fingerprint = hashlib.sha256(cert.dump()).hexdigest()
        self.description = f"{self.subject} (sidik jari SHA-256 {self.fingerprint[:16]}...)"
        self.level = "PAdES B-T" if timestamp_url else "PAdES B-B"

    def _sign_sync(self, pdf_bytes: bytes, *, signer_name: str, capacity: str, reason: str,
                   location: str, when: datetime, box: SignatureBox | None,
                   signing_time: datetime | None = None) -> bytes:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.text import TextBoxStyle
        from pyhanko.sign import fields, signers, timestamps
        from pyhanko.stamp import TextStampStyle

        spec = None
        if box is not None:
            spec = fields.SigFieldSpec(FIELD_NAME, on_page=box.page, box=box.pdf_rect())
        meta = signers.PdfSignatureMetadata(
            field_name=FIELD_NAME, reason=reason, location=location,
            name=f"{signer_name}, {capacity}".strip(", "),
            subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
        # the standard Helvetica: every reader draws it the same (text in Latin-1)
        from pyhanko.pdf_utils.font.basic import SimpleFontEngineFactory

        from pyhanko.pdf_utils import layout

        box_style = TextBoxStyle(
            font=SimpleFontEngineFactory("Helvetica", 0.5), font_size=9, leading=10,
            box_layout_rule=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins.uniform(1)))
        from reports.pdf import latin1_text

        text = latin1_text(appearance_text(signer_name, capacity, when))
        fit = layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MID,
                                         y_align=layout.AxisAlignment.ALIGN_MID,
                                         margins=layout.Margins.uniform(3))
        style = TextStampStyle(stamp_text="%(line)s", text_box_style=box_style,
                               border_width=1, background=None, inner_content_layout=fit)
        stamper = timestamps.HTTPTimeStamper(self.timestamp_url) if self.timestamp_url else None
        pdf_signer = _ClockPdfSigner(meta, signer=self._signer, timestamper=stamper,
                                     stamp_style=style, new_field_spec=spec)
        pdf_signer.system_time = signing_time
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
        out = pdf_signer.sign_pdf(writer, appearance_text_params={"line": text})
        return out.getvalue()

    async def sign(self, pdf_bytes: bytes, *, signer_name: str, capacity: str, reason: str,
                   location: str, when: datetime, box: SignatureBox | None = None,
                   signing_time: datetime | None = None) -> bytes:
        try:
            return await asyncio.to_thread(
                self._sign_sync, pdf_bytes, signer_name=signer_name, capacity=capacity,
                reason=reason, location=location, when=when, box=box,
                signing_time=signing_time)
        except SigningError:
            raise
        except Exception as exc:
            log.exception("PAdES signing failed")
            if self.timestamp_url:
                raise SigningError("Dokumen tidak dapat ditandatangani: layanan cap waktu "
                                   f"({self.timestamp_url}) tidak menjawab atau menolak "
                                   f"({type(exc).__name__}).") from None
            raise SigningError("Dokumen tidak dapat ditandatangani secara elektronik "
                               f"({type(exc).__name__}).") from None


def signer_from_config(cfg: "Config", env=None) -> Signer | None:
    """The office's signer, or None when no certificate is configured. A configured
    certificate that cannot be opened raises ``ConfigError`` (start-up stops)."""
    env = os.environ if env is None else env
    s = cfg.signing
    path = env.get(ENV_PKCS12) or s.pkcs12_path
    if not path:
        return None
    passphrase = env.get(ENV_PASSPHRASE, s.passphrase)
    from bot.config import ConfigError

    try:
        return Pkcs12Signer(cfg.resolve(path), passphrase, timestamp_url=s.timestamp_url)
    except SigningError as exc:  # start-up stops with a message naming the key
        raise ConfigError(f"signing.pkcs12_path / {ENV_PASSPHRASE}: {exc}") from None


# ------------------------------------------------------------------ verification
@dataclass(frozen=True)
class SignatureCheck:
    """What the PAdES check of a PDF found."""

    present: bool
    intact: bool = False        # the signed bytes are unchanged
    trusted: bool = False       # the certificate chains to a configured trust root
    whole_file: bool = False    # nothing was added after the signature
    signer: str = ""            # the certificate's subject
    fingerprint: str = ""       # sha256 of the signing certificate
    signed_at: datetime | None = None
    detail: str = ""

    @property
    def valid(self) -> bool:
        return self.present and self.intact and self.trusted and self.whole_file


def _load_certs(paths) -> list:
    from asn1crypto import pem, x509

    certs = []
    for p in paths:
        data = Path(p).read_bytes()
        if pem.detect(data):
            for _, _, der in pem.unarmor(data, multiple=True):
                certs.append(x509.Certificate.load(der))
        else:
            certs.append(x509.Certificate.load(data))
    return certs


def _check_sync(pdf_bytes: bytes, trust_roots: list) -> SignatureCheck:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:
        return SignatureCheck(present=False, detail=f"bukan PDF yang dapat dibaca ({type(exc).__name__})")
    if not sigs:
        return SignatureCheck(present=False, detail="tidak ada tanda tangan elektronik")
    sig = sigs[-1]
    vc = ValidationContext(trust_roots=trust_roots, allow_fetching=False)
    try:
        status = validate_pdf_signature(sig, vc)
    except Exception as exc:
        return SignatureCheck(present=True, detail=f"tanda tangan rusak ({type(exc).__name__})")
    cert = status.signing_cert
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    return SignatureCheck(
        present=True, intact=bool(status.intact and status.valid), trusted=bool(status.trusted),
        whole_file=whole, signer=cert.subject.human_friendly if cert is not None else "",
        fingerprint=hashlib.sha256(cert.dump()).hexdigest() if cert is not None else "",
        signed_at=status.signer_reported_dt,
        detail="" if whole else "ada perubahan setelah tanda tangan")


async def check_pdf(pdf_bytes: bytes, trust_root_files=()) -> SignatureCheck:
    """Validate the (last) PAdES signature of ``pdf_bytes`` against the trust roots."""
    roots = _load_certs(trust_root_files)
    return await asyncio.to_thread(_check_sync, pdf_bytes, roots)


def trust_roots(cfg: "Config") -> list[Path]:
    return [cfg.resolve(p) for p in cfg.signing.trust_roots]


# ------------------------------------------------------------------ demo certificates
@dataclass(frozen=True)
class DemoCertificates:
    ca_cert: Path       # PEM, the trust root to verify the demo's PDF with
    pkcs12: Path        # the signer's certificate and key
    passphrase: str


def make_demo_certificates(folder: Path, office_name: str) -> DemoCertificates:
    """A throw-away CA and signer certificate for ``sopbot demo`` (DATA CONTOH)."""
    import secrets

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.now(timezone.utc)
    start, end = now - timedelta(days=5 * 366), now + timedelta(days=2 * 366)

    def name(cn: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DATA CONTOH - bukan sertifikat resmi"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = name("CA Contoh sopbot (DATA CONTOH)")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(name(f"{office_name[:50]} (DATA CONTOH)"))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    passphrase = secrets.token_urlsafe(16)
    p12 = pkcs12.serialize_key_and_certificates(
        b"sopbot-demo", key, cert, [ca],
        serialization.BestAvailableEncryption(passphrase.encode()))
    from bot.core.storage import write_private

    ca_path, p12_path = folder / "ca-contoh.pem", folder / "penanda-tangan-contoh.p12"
    write_private(ca_path, ca.public_bytes(serialization.Encoding.PEM))
    write_private(p12_path, p12)
    return DemoCertificates(ca_cert=ca_path, pkcs12=p12_path, passphrase=passphrase)


# ------------------------------------------------------------------ TTE gateway (BSrE-style)
class GatewaySigner:
    """A client of a BSrE-style TTE gateway of the Pemda: the PDF is signed by the
    person's own certified key, identified by NIK and unlocked by their passphrase.

    ``POST {url}/api/sign/pdf`` (HTTP Basic with the office's client credentials),
    multipart: ``file``, ``nik``, ``passphrase``, ``tampilan`` (visible/invisible) and,
    visible, ``halaman``, ``xAxis``, ``yAxis``, ``width``, ``height`` (PDF points from
    the bottom left), ``reason``, ``location``. 200 with a PDF is the signed document;
    an error is JSON ``{"error": "...", "status_code": N}``. The passphrase is sent once
    and kept nowhere: not in an attribute, a log line or an exception.
    """

    level = "TTE (gateway)"

    def __init__(self, url: str, username: str = "", password: str = "", *,
                 timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._auth = (username, password) if username else None
        self.timeout = timeout
        self.description = f"gateway TTE {self.url}"
        self.subject = self.description
        self.fingerprint = ""

    def for_person(self, nik: str, passphrase: str) -> "_GatewayCall":
        """A one-shot :class:`Signer` for one person's NIK and passphrase."""
        return _GatewayCall(self, nik, passphrase)

    async def _sign(self, pdf_bytes: bytes, nik: str, passphrase: str, *, reason: str,
                    location: str, box: SignatureBox | None) -> "tuple[bytes, SignatureCheck]":
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", pdf_bytes, filename="dokumen.pdf", content_type="application/pdf")
        form.add_field("nik", nik)
        form.add_field("passphrase", passphrase)
        form.add_field("reason", reason)
        form.add_field("location", location)
        if box is not None:
            x1, y1, x2, y2 = box.pdf_rect()
            for key, value in (("tampilan", "visible"), ("halaman", str(box.page + 1)),
                               ("xAxis", str(x1)), ("yAxis", str(y1)),
                               ("width", str(x2 - x1)), ("height", str(y2 - y1))):
                form.add_field(key, value)
        else:
            form.add_field("tampilan", "invisible")
        headers = {}
        if self._auth:
            import base64

            token = base64.b64encode(":".join(self._auth).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as http, \
                    http.post(f"{self.url}/api/sign/pdf", data=form, headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("TTE gateway unreachable: %s", type(exc).__name__)
            raise SigningError("Layanan TTE (gateway) tidak dapat dihubungi; dokumen belum "
                               "ditandatangani. Coba lagi nanti.") from None
        if status == 200 and body.startswith(b"%PDF"):
            check = await check_pdf(body)
            if not check.present or not check.intact:
                raise SigningError("Jawaban layanan TTE bukan PDF bertanda tangan yang utuh; "
                                   "dokumen belum ditandatangani.")
            return body, check
        detail, code = "", None
        try:
            import json

            data = json.loads(body)
            detail, code = str(data.get("error", "")), data.get("status_code")
        except ValueError:
            pass
        log.warning("TTE gateway refused: HTTP %s, status_code %s", status, code)
        if code == 2031 or "passphrase" in detail.lower():
            raise WrongPassphrase("Passphrase TTE salah; dokumen belum ditandatangani. "
                                  "Silakan coba lagi.")
        if code == 2011 or "nik" in detail.lower():
            raise SigningError("NIK penanda tangan tidak terdaftar pada layanan TTE; "
                               "dokumen belum ditandatangani.")
        if status >= 500:
            raise SigningError("Layanan TTE (gateway) sedang bermasalah; dokumen belum "
                               "ditandatangani. Coba lagi nanti.")
        raise SigningError(f"Layanan TTE menolak permintaan (HTTP {status}); dokumen belum "
                           "ditandatangani.")


class _GatewayCall:
    """:class:`Signer` for one signing by one person (the passphrase lives only here,
    for the duration of one call, and is dropped after it)."""

    level = GatewaySigner.level

    def __init__(self, gateway: GatewaySigner, nik: str, passphrase: str) -> None:
        self.gateway = gateway
        self.description = gateway.description
        self.subject, self.fingerprint = gateway.description, ""  # known once signed
        self._nik, self._passphrase = nik, passphrase

    def __repr__(self) -> str:  # never the passphrase
        return f"<TTE gateway call for NIK ...{self._nik[-4:]}>"

    async def sign(self, pdf_bytes: bytes, *, signer_name: str, capacity: str, reason: str,
                   location: str, when: datetime, box: SignatureBox | None = None,
                   signing_time: datetime | None = None) -> bytes:
        """The gateway puts its own appearance and its own signing time (the BSrE-style
        API takes neither a text nor a time); ``when``/``signing_time`` are not sent."""
        passphrase, self._passphrase = self._passphrase, ""
        if not passphrase:
            raise SigningError("Passphrase TTE sudah dipakai; kirim lagi untuk mencoba ulang.")
        body, check = await self.gateway._sign(pdf_bytes, self._nik, passphrase,
                                               reason=reason, location=location, box=box)
        del passphrase
        self.subject, self.fingerprint = check.signer or self.subject, check.fingerprint
        return body


def gateway_from_config(cfg: "Config", env=None) -> GatewaySigner | None:
    """The Pemda's TTE gateway when ``[signing] gateway_url`` is set (the client
    password may come from ``SOPBOT_TTE_GATEWAY_PASSWORD``), else None."""
    env = os.environ if env is None else env
    s = cfg.signing
    if not s.gateway_url:
        return None
    from bot.config import ConfigError

    if env.get(ENV_PKCS12) or s.pkcs12_path:
        raise ConfigError("signing: pilih salah satu, sertifikat kantor (pkcs12_path) atau "
                          "gateway TTE (gateway_url), bukan keduanya.")
    return GatewaySigner(s.gateway_url, s.gateway_username,
                         env.get(ENV_GATEWAY_PASSWORD, s.gateway_password))


def gateway_nik(cfg: "Config", nip: str | None) -> str:
    """The NIK under which a person (by NIP) signs at the TTE gateway, or ""."""
    return cfg.signing.gateway_nik.get((nip or "").strip(), "")
