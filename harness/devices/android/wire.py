"""ADB wire formats shared by the simulator and the host transports.

Covers the 24-byte transport message header, the shell protocol v2 packets, the file
sync request/response records and the Android RSA public key format used for AUTH.
All integers are little-endian, as the protocol specifies.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils


def _cmd(name: bytes) -> int:
    return int.from_bytes(name, "little")


A_SYNC, A_CNXN, A_AUTH = _cmd(b"SYNC"), _cmd(b"CNXN"), _cmd(b"AUTH")
A_OPEN, A_OKAY, A_CLSE, A_WRTE = _cmd(b"OPEN"), _cmd(b"OKAY"), _cmd(b"CLSE"), _cmd(b"WRTE")
COMMAND_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_AUTH: "AUTH", A_OPEN: "OPEN",
                 A_OKAY: "OKAY", A_CLSE: "CLSE", A_WRTE: "WRTE"}

VERSION_MIN = 0x01000000  # checksums are computed and verified
VERSION_SKIP_CHECKSUM = 0x01000001  # peers may send a zero checksum
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
TOKEN_SIZE = 20

HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size


class ProtocolError(Exception):
    """The peer sent bytes that violate the ADB protocol."""


@dataclass(frozen=True)
class Message:
    """One transport message: a command, two arguments and an optional payload."""

    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        """The four-letter command name, for logs and errors."""
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")


def checksum(payload: bytes) -> int:
    """The protocol's data checksum: the byte sum of the payload, modulo 2**32."""
    return sum(payload) & 0xFFFFFFFF


def pack_message(msg: Message) -> bytes:
    """Serialize a message (header with checksum and magic, then payload)."""
    magic = msg.command ^ 0xFFFFFFFF
    header = HEADER.pack(msg.command, msg.arg0, msg.arg1, len(msg.payload), checksum(msg.payload), magic)
    return header + msg.payload


def unpack_header(header: bytes, max_payload: int) -> tuple[int, int, int, int, int]:
    """Validate a 24-byte header; returns (command, arg0, arg1, length, checksum)."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(header)
    if command not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic for {COMMAND_NAMES[command]}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds the maximum {max_payload}")
    return command, arg0, arg1, length, check


def verify_checksum(payload: bytes, check: int) -> None:
    """Accept the correct checksum, or zero (sent by peers at VERSION_SKIP_CHECKSUM)."""
    if check not in (0, checksum(payload)):
        raise ProtocolError("payload checksum mismatch")


# --- shell protocol v2 -------------------------------------------------------------------

SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN = 0, 1, 2, 3, 4
_SHELL_HEADER = struct.Struct("<BI")


def pack_shell_packet(packet_id: int, data: bytes) -> bytes:
    """One shell v2 packet: a one-byte stream id, a 4-byte length, then the data."""
    return _SHELL_HEADER.pack(packet_id, len(data)) + data


def split_shell_packets(data: bytes) -> list[tuple[int, bytes]]:
    """Decode a complete shell v2 byte stream into (id, data) packets."""
    packets, pos = [], 0
    while pos < len(data):
        if len(data) - pos < _SHELL_HEADER.size:
            raise ProtocolError("truncated shell packet header")
        packet_id, length = _SHELL_HEADER.unpack_from(data, pos)
        pos += _SHELL_HEADER.size
        if len(data) - pos < length:
            raise ProtocolError("truncated shell packet data")
        packets.append((packet_id, data[pos:pos + length]))
        pos += length
    return packets


# --- file sync ----------------------------------------------------------------------------

SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024
SYNC_REQUEST = struct.Struct("<4sI")
STAT_V1 = struct.Struct("<4s3I")  # id, mode, size, mtime
STAT_V2 = struct.Struct("<4sIQQ4IQqqq")  # id, error, dev, ino, mode, nlink, uid, gid, size, a/m/ctime
DENT_V1 = struct.Struct("<4s4I")  # id, mode, size, mtime, namelen
DENT_V2 = struct.Struct("<4sIQQ4IQqqqI")  # the STAT_V2 fields, then namelen


# --- Android RSA public keys --------------------------------------------------------------

_PUBKEY_HEAD = struct.Struct("<2I")  # modulus_size_words, n0inv
_PUBKEY_WORDS = 2048 // 32  # adb keys are 2048-bit


def decode_android_pubkey(text: str | bytes) -> rsa.RSAPublicKey:
    """Parse an `adbkey.pub` line: base64 of the Android RSAPublicKey struct, then a comment."""
    raw = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    fields = raw.strip("\0 \r\n").split()
    if not fields:
        raise ValueError("empty public key")
    try:
        blob = base64.b64decode(fields[0], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"public key is not base64: {exc}") from None
    size = _PUBKEY_WORDS * 4
    if len(blob) != _PUBKEY_HEAD.size + 2 * size + 4:
        raise ValueError(f"public key struct has {len(blob)} bytes, expected a 2048-bit key")
    words, _n0inv = _PUBKEY_HEAD.unpack_from(blob)
    if words != _PUBKEY_WORDS:
        raise ValueError(f"unsupported modulus size of {words} words")
    modulus = int.from_bytes(blob[_PUBKEY_HEAD.size:_PUBKEY_HEAD.size + size], "little")
    (exponent,) = struct.unpack_from("<I", blob, _PUBKEY_HEAD.size + 2 * size)
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def verify_token_signature(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """True if `signature` is the host's PKCS#1 v1.5 signature of the token (taken as a SHA-1 digest)."""
    try:
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True
