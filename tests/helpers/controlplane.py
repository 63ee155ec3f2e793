"""Start a real Kubernetes control plane (etcd + kube-apiserver) for tests."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TESTENV_DIR = Path(__file__).resolve().parents[2] / "testenv"
BUILD_SCRIPT = TESTENV_DIR / "build.sh"
BIN_ENV_VAR = "GITOPS_BOT_TESTENV_BIN"
BINARIES = ("etcd", "kube-apiserver")
NO_GO_EXIT_CODE = 3  # build.sh: no Go toolchain to build with
ADMIN_USER = "admin"
BOT_USER = "gitops-bot"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class CertFiles:
    """A PEM certificate and its private key, as files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane and the files needed to talk to it."""

    server_url: str
    ca_file: Path
    admin_kubeconfig: Path
    bot_kubeconfig: Path
    admin: CertFiles
    bot: CertFiles
    workdir: Path

    def ssl_context(self, identity: CertFiles | None = None) -> ssl.SSLContext:
        """TLS context trusting the cluster CA, presenting `identity` (admin)."""
        ident = identity or self.admin
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(ident.cert_file), str(ident.key_file))
        return ctx

    def get(self, path: str, identity: CertFiles | None = None) -> tuple[int, bytes]:
        """GET `path` from the API server; returns (HTTP status, body)."""
        return _https_get(self.server_url + path, self.ssl_context(identity))


# --- binaries -----------------------------------------------------------------


def pinned_versions() -> tuple[str, str]:
    """(kubernetes, etcd) versions pinned in testenv/go.mod: ("v1.Y.Z", "v3.Y.Z")."""
    text = (TESTENV_DIR / "go.mod").read_text()
    k8s = _mod_version(text, "k8s.io/kubernetes")
    etcd = _mod_version(text, "go.etcd.io/etcd/server/v3")
    return k8s, etcd


def _mod_version(gomod: str, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{module} is not required in {TESTENV_DIR / 'go.mod'}")
    return match.group(1)


def cached_bin_dir() -> Path:
    """Where testenv/build.sh puts the binaries for the pinned versions."""
    cache = os.environ.get("GITOPS_BOT_CACHE") or Path.home() / ".cache/gitops-bot"
    k8s, etcd = pinned_versions()
    return Path(cache) / "testenv" / f"{k8s}-{etcd}" / "bin"


def go_toolchain() -> str | None:
    """The `go` build.sh would use ($GO, PATH, /usr/local/go/bin/go), or None."""
    return shutil.which(os.environ.get("GO") or "go") or shutil.which(
        "go", path="/usr/local/go/bin"
    )


def binaries_obtainable() -> bool:
    """Cheap check: find_binaries() can return a bin dir (override, cache or Go)."""
    if os.environ.get(BIN_ENV_VAR) or go_toolchain():
        return True
    cached = cached_bin_dir()
    return all(os.access(cached / name, os.X_OK) for name in BINARIES)


def find_binaries() -> Path | None:
    """Bin dir holding etcd and kube-apiserver, built by testenv/build.sh if needed.

    $GITOPS_BOT_TESTENV_BIN overrides the build. Returns None when the binaries
    are not cached and there is no Go toolchain to build them; raises on any
    other build failure. The first build takes 10-25 minutes.
    """
    override = os.environ.get(BIN_ENV_VAR)
    if override:
        return _check_bin_dir(Path(override), f"${BIN_ENV_VAR}")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode == NO_GO_EXIT_CODE:
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{_tail(proc.stderr, 30)}"
        )
    return _check_bin_dir(Path(lines[-1]), str(BUILD_SCRIPT))


def _check_bin_dir(bin_dir: Path, source: str) -> Path:
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise RuntimeError(f"{source}: no executable {', '.join(missing)} in {bin_dir}")
    return bin_dir


# --- certificates ---------------------------------------------------------------


@dataclass(frozen=True)
class _CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _cert_builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _new_ca() -> _CA:
    key = _new_key()
    name = _name("gitops-bot-test-ca")
    cert = (
        _cert_builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _CA(cert, key)


def _issue(
    ca: _CA,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    builder = (
        _cert_builder(subject, ca.cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(ca.key, hashes.SHA256()), key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _write_pair(
    pki: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> CertFiles:
    return CertFiles(
        _write(pki / f"{stem}.crt", _cert_pem(cert), 0o644),
        _write(pki / f"{stem}.key", _key_pem(key)),
    )


@dataclass(frozen=True)
class _Pki:
    ca_file: Path
    serving: CertFiles
    admin: CertFiles
    bot: CertFiles
    sa_public: Path
    sa_private: Path


def _make_pki(pki: Path) -> _Pki:
    """CA, serving cert for loopback, admin and bot client certs, SA key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    ca = _new_ca()
    sans = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),  # the kubernetes Service IP
    ]
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    sa_key = _new_key()
    sa_public = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _Pki(
        ca_file=_write(pki / "ca.crt", _cert_pem(ca.cert), 0o644),
        serving=_write_pair(
            pki,
            "apiserver",
            *_issue(ca, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans),
        ),
        admin=_write_pair(pki, "admin", *_issue(ca, _name(ADMIN_USER, "system:masters"), client)),
        bot=_write_pair(pki, "bot", *_issue(ca, _name(BOT_USER), client)),
        sa_public=_write(pki / "sa.pub", sa_public, 0o644),
        sa_private=_write(pki / "sa.key", _key_pem(sa_key)),
    )


def _write_kubeconfig(
    path: Path, server_url: str, ca_file: Path, user: str, ident: CertFiles
) -> Path:
    """Self-contained kubeconfig (JSON is valid kubeconfig YAML) for one identity."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": b64(ca_file),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(ident.cert_file),
                    "client-key-data": b64(ident.key_file),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}],
        "current-context": user,
        "preferences": {},
    }
    return _write(path, json.dumps(config, indent=2).encode())


# --- processes ------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together while choosing)."""
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as err:
        return f"(no log: {err})"


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen[bytes]
    log_file: Path
    log: IO[bytes]

    def describe(self) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        return f"--- {self.name} ({state}), {self.log_file}:\n{_log_tail(self.log_file)}"

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _spawn(name: str, argv: Sequence[str], workdir: Path) -> _Process:
    log_file = workdir / f"{name}.log"
    log = log_file.open("wb")
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    return _Process(name, proc, log_file, log)


def _etcd_args(bin_dir: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return [
        str(bin_dir / "etcd"),
        "--name=test",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=test={peer}",
        "--unsafe-no-fsync",  # throwaway data: trade durability for speed
        "--log-level=warn",
    ]


def _apiserver_args(bin_dir: Path, pki: _Pki, etcd_url: str, port: int, workdir: Path) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={workdir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.serving.cert_file}",
        f"--tls-private-key-file={pki.serving.key_file}",
        f"--client-ca-file={pki.ca_file}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_public}",
        f"--service-account-signing-key-file={pki.sa_private}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # No controller-manager runs, so no ServiceAccount objects get created.
        "--disable-admission-plugins=ServiceAccount",
        # Endpoints reject the loopback advertise address; skip reconciling them.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def _https_get(url: str, ctx: ssl.SSLContext, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _wait_ready(cp: ControlPlane, procs: Sequence[_Process], timeout: float) -> None:
    """Poll /readyz as admin until it answers 200; raise with log tails otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if exited := [p for p in procs if p.proc.poll() is not None]:
            problem = ", ".join(f"{p.name} exited with code {p.proc.returncode}" for p in exited)
            break
        try:
            status, body = cp.get("/readyz")
            if status == HTTPStatus.OK:
                return
            last = f"HTTP {status}: {_tail(body.decode(errors='replace'), 5)}"
        except (OSError, ssl.SSLError) as err:
            last = str(err)
        if time.monotonic() > deadline:
            problem = f"/readyz not OK after {timeout:.0f}s (last: {last})"
            break
        time.sleep(0.25)
    logs = "\n".join(p.describe() for p in procs)
    raise RuntimeError(f"control plane at {cp.server_url} failed to start: {problem}\n{logs}")


@contextlib.contextmanager
def start_control_plane(
    bin_dir: Path, workdir: Path, timeout: float = 90.0
) -> Iterator[ControlPlane]:
    """Run etcd and kube-apiserver from `bin_dir`, state in `workdir`; stop on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _make_pki(workdir / "pki")
    etcd_port, peer_port, port = _free_ports(3)
    server_url = f"https://127.0.0.1:{port}"
    cp = ControlPlane(
        server_url=server_url,
        ca_file=pki.ca_file,
        admin_kubeconfig=_write_kubeconfig(
            workdir / "admin.kubeconfig", server_url, pki.ca_file, ADMIN_USER, pki.admin
        ),
        bot_kubeconfig=_write_kubeconfig(
            workdir / "bot.kubeconfig", server_url, pki.ca_file, BOT_USER, pki.bot
        ),
        admin=pki.admin,
        bot=pki.bot,
        workdir=workdir,
    )
    etcd_argv = _etcd_args(bin_dir, workdir / "etcd-data", etcd_port, peer_port)
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    apiserver_argv = _apiserver_args(bin_dir, pki, etcd_url, port, workdir)
    procs: list[_Process] = []
    try:
        procs.append(_spawn("etcd", etcd_argv, workdir))
        procs.append(_spawn("kube-apiserver", apiserver_argv, workdir))
        _wait_ready(cp, procs, timeout)
        yield cp
    finally:
        for proc in reversed(procs):  # apiserver first, then etcd
            proc.stop()


KUBECTL_ENV_VAR = "GITOPS_BOT_KUBECTL_BIN"  # set by `make test` from testenv/build.sh kubectl


@cache
def kubectl() -> str | None:
    """Path of the kubectl built for the control plane's version: in $GITOPS_BOT_KUBECTL_BIN,
    or built by testenv/build.sh (cached). None when there is no Go toolchain to build it; a
    kubectl of another version found on PATH is never used (the parity tests compare with
    kubectl's own reading of the server, which must be the same version)."""
    override = os.environ.get(KUBECTL_ENV_VAR)
    if override:
        bin_dir = Path(override)
    else:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "kubectl"], capture_output=True, text=True, check=False
        )
        if proc.returncode == NO_GO_EXIT_CODE:
            return None
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"{BUILD_SCRIPT} kubectl failed:\n{_tail(proc.stderr, 30)}")
        bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(bin_dir / "kubectl", os.X_OK):
        raise RuntimeError(f"no executable kubectl in {bin_dir}")
    return str(bin_dir / "kubectl")
