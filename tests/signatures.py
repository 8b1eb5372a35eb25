"""Signatures computed in tests with each provider's documented algorithm (not our code)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def stripe_style(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def base64_hmac(body: bytes, secret: str) -> str:
    """Shopify and WooCommerce: base64(HMAC-SHA256(secret, body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def mailgun(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun: hex(HMAC-SHA256(signing key, timestamp + token))."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


class SendGridSigner:
    """SendGrid's Signed Event Webhook: ECDSA P-256 / SHA-256 over timestamp + body."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()  # as the SendGrid console shows it

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature = self._key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp)}


class SnsSigner:
    """Amazon SNS: RSA PKCS#1 v1.5 over the canonical string, with a certificate we made."""

    CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"

    def __init__(self) -> None:
        from datetime import UTC, datetime, timedelta

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30))
                .sign(self._key, hashes.SHA256()))
        self.certificate = cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict[str, str], version: str = "2") -> dict[str, str]:
        """Add SignatureVersion, SigningCertURL and Signature, as SNS documents them."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        keys = (["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
                if message["Type"] == "Notification" else
                ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                 "Type"])
        text = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message)
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303
        signature = self._key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version, "SigningCertURL": self.CERT_URL,
                "Signature": base64.b64encode(signature).decode()}


def mandrill(webhook_key: str, url: str, params: dict[str, str]) -> str:
    """Mandrill: base64(HMAC-SHA1(webhook key, URL + each POST name and value, by name))."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(webhook_key.encode(), signed.encode(),
                                     hashlib.sha1).digest()).decode()


def basic_auth(user_password: str) -> str:
    """HTTP basic auth, as a sender builds it from `https://user:password@host/...`."""
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def svix(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """Svix (Resend): v1,base64(HMAC-SHA256(base64decode(secret minus "whsec_"),
    "{svix-id}.{svix-timestamp}.{body}")), as docs.svix.com documents it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"svix-id": msg_id, "svix-timestamp": str(timestamp),
            "svix-signature": f"v1,{signature}"}
