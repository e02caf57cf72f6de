"""The client TLS context and what a certificate says about itself (no sockets)."""

from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from postroom.mail.tls import CustomCaError, certificate_info, client_tls_context
from tests.support.certs import CertAuthority


def test_the_client_context_verifies_certificates_and_host_names() -> None:
    context = client_tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_custom_ca_is_added_to_the_system_store(test_ca: CertAuthority) -> None:
    system_only = len(client_tls_context().get_ca_certs())
    with_custom = client_tls_context(ca_pem=test_ca.pem).get_ca_certs()
    assert len(with_custom) == system_only + 1
    assert any(
        dict(item[0] for item in ca["subject"]).get("commonName") == "Postroom Test CA"
        for ca in with_custom
    )


def test_a_custom_ca_that_is_not_pem_is_a_configuration_error() -> None:
    with pytest.raises(CustomCaError) as caught:
        client_tls_context(ca_pem="not a certificate")
    assert caught.value.code == "custom_ca_invalid"
    assert "-----BEGIN CERTIFICATE-----" in caught.value.message


def test_the_unverified_context_is_only_for_looking() -> None:
    context = client_tls_context(verify=False)
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname


def test_certificate_info_reads_names_issuer_and_dates(test_ca: CertAuthority) -> None:
    issued = test_ca.issue(("mail.example.net", "10.1.2.3"), stem="info")
    der = x509.load_pem_x509_certificate(issued.cert_path.read_bytes()).public_bytes(Encoding.DER)
    info = certificate_info(der)
    assert info.names == ("mail.example.net", "10.1.2.3")
    assert info.common_name == "mail.example.net"
    assert info.issuer_common_name == "Postroom Test CA"
    assert not info.is_self_signed
    assert not info.is_expired()
    assert 28 <= info.days_left() <= 30
    assert "Names: mail.example.net, 10.1.2.3" in info.describe()


def test_an_expired_certificate_is_expired(test_ca: CertAuthority) -> None:
    issued = test_ca.issue(stem="old", expired=True)
    der = x509.load_pem_x509_certificate(issued.cert_path.read_bytes()).public_bytes(Encoding.DER)
    assert certificate_info(der).is_expired()
