"""Certificates and kubeconfigs for the sandbox control plane.

One CA signs the API server's serving certificate and a client certificate per identity
(admin, controller-manager, scheduler, kwok, traffic simulator). Keys never leave
``.sandbox/pki`` (mode 0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)

# identity -> (common name, organisations)
CLIENT_IDENTITIES = {
    "admin": ("ceres-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kwok": ("kwok-controller", ["system:masters"]),
    "simulator": ("ceres-traffic-simulator", []),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
}


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organisations: list[str] | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organisations or []]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _sign(subject: x509.Name, public_key, issuer_cert, issuer_key, extensions) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_pki(pki_dir: Path, api_url: str) -> None:
    """Create the CA, serving and client certificates and kubeconfigs once."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki_dir, 0o700)
    if (pki_dir / "complete").exists():
        return

    ca_key = _new_key()
    ca_cert = _sign(
        _name("ceres-sandbox-ca"),
        ca_key.public_key(),
        None,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
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
                True,
            ),
        ],
    )
    _write_private(pki_dir / "ca.key", _key_pem(ca_key))
    (pki_dir / "ca.crt").write_bytes(_cert_pem(ca_cert))

    serving_key = _new_key()
    alt_names = [
        x509.DNSName(n)
        for n in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "10.96.0.1")]
    serving_cert = _sign(
        _name("kube-apiserver"),
        serving_key.public_key(),
        ca_cert,
        ca_key,
        [
            (x509.SubjectAlternativeName(alt_names), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    _write_private(pki_dir / "apiserver.key", _key_pem(serving_key))
    (pki_dir / "apiserver.crt").write_bytes(_cert_pem(serving_cert))

    sa_key = _new_key()
    _write_private(pki_dir / "sa.key", _key_pem(sa_key))
    (pki_dir / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    for identity, (common_name, organisations) in CLIENT_IDENTITIES.items():
        key = _new_key()
        cert = _sign(
            _name(common_name, organisations),
            key.public_key(),
            ca_cert,
            ca_key,
            [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        )
        _write_private(pki_dir / f"{identity}.key", _key_pem(key))
        (pki_dir / f"{identity}.crt").write_bytes(_cert_pem(cert))
        write_kubeconfig(
            pki_dir / f"{identity}.kubeconfig",
            api_url,
            pki_dir / "ca.crt",
            pki_dir / f"{identity}.crt",
            pki_dir / f"{identity}.key",
            identity,
        )
    (pki_dir / "complete").write_text("ok\n")


def write_kubeconfig(path: Path, api_url: str, ca_file: Path, cert_file: Path, key_file: Path, user: str) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ceres-sandbox", "cluster": {"server": api_url, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert_file), "client-key": str(key_file)}}],
        "contexts": [{"name": "ceres-sandbox", "context": {"cluster": "ceres-sandbox", "user": user}}],
        "current-context": "ceres-sandbox",
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(kubeconfig, sort_keys=False).encode())
