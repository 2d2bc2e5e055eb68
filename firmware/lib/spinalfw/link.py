"""The MCU end of the host link: splits the byte stream into COBS frames, checks CRCs, builds outgoing frames.

Used by spinalfw.app; every buffer is allocated here once, so receiving and sending in the loop allocates nothing.
"""

from micropython import const

from spinalfw import proto
from spinalfw.framing import cobs_decode, cobs_encode, copy_bytes, crc16, find_byte

_CHUNK = const(128)
_ENC_CAP = const(260)
_ENC_MAX = const(254)  # a 253-byte raw frame plus its COBS byte; anything longer is not a frame


class LinkPort:
    """Frame codec over a HAL link object with `readinto(buf, n) -> int` (non-blocking) and `write(buf, off, n)`.

    `poll()` returns True once a valid frame is in `frame` (type at 0, seq at 1..2, payload from 3, length
    `frame_len` without the CRC); corrupted frames are counted and dropped, never returned.
    """

    def __init__(self, port):
        self.port = port
        self.chunk = bytearray(_CHUNK)
        self.chunk_len = 0
        self.chunk_pos = 0
        self.acc = bytearray(_ENC_CAP)
        self.acc_len = 0
        self.overflow = False
        self.frame = bytearray(_ENC_CAP)
        self.frame_len = 0
        self.out = bytearray(_ENC_CAP)  # raw outgoing frame; payload written from index 3 by the caller
        self.enc = bytearray(_ENC_CAP + 1)
        self.tx_seq = 0
        self.rx_frames = 0
        self.rx_crc_errors = 0
        self.rx_bad_frames = 0
        self.tx_frames = 0
        self.tx_dropped = 0

    def frame_type(self):
        return self.frame[0]

    def frame_seq(self):
        return self.frame[1] | (self.frame[2] << 8)

    def payload_len(self):
        return self.frame_len - proto.HEADER_LEN

    def poll(self):
        """Consume received bytes until one valid frame is ready (True) or the input is drained (False)."""
        while True:
            if self.chunk_pos >= self.chunk_len:
                self.chunk_len = self.port.readinto(self.chunk, _CHUNK) or 0
                self.chunk_pos = 0
                if self.chunk_len == 0:
                    return False
            start = self.chunk_pos
            zero = find_byte(self.chunk, start, self.chunk_len, 0)
            end = self.chunk_len if zero < 0 else zero
            n = end - start
            if not self.overflow:
                if self.acc_len + n > _ENC_MAX:
                    self.overflow = True
                else:
                    copy_bytes(self.acc, self.acc_len, self.chunk, start, n)
                    self.acc_len += n
            if zero < 0:
                self.chunk_pos = self.chunk_len
                continue
            self.chunk_pos = zero + 1
            if self._finish_frame():
                return True

    def _finish_frame(self):
        acc_len = self.acc_len
        overflow = self.overflow
        self.acc_len = 0
        self.overflow = False
        if acc_len == 0 and not overflow:
            return False  # an empty frame is just a delimiter; senders may lead with one to resync
        if overflow:
            self.rx_bad_frames += 1
            return False
        n = cobs_decode(self.acc, acc_len, self.frame)
        if n < proto.HEADER_LEN + proto.CRC_LEN:
            self.rx_bad_frames += 1
            return False
        body = n - proto.CRC_LEN
        if crc16(self.frame, 0, body) != (self.frame[body] | (self.frame[body + 1] << 8)):
            self.rx_crc_errors += 1
            return False
        self.frame_len = body
        self.rx_frames += 1
        return True

    def send(self, msg_type, payload_len):
        """Frame, encode and write `out[3:3+payload_len]` as one message; drops it if the link cannot take it."""
        out = self.out
        seq = self.tx_seq
        out[0] = msg_type
        out[1] = seq & 0xFF
        out[2] = (seq >> 8) & 0xFF
        body = proto.HEADER_LEN + payload_len
        c = crc16(out, 0, body)
        out[body] = c & 0xFF
        out[body + 1] = c >> 8
        n = cobs_encode(out, body + proto.CRC_LEN, self.enc)
        self.enc[n] = 0
        self.tx_seq = (seq + 1) & 0xFFFF
        if not self.port.writable():
            self.tx_dropped += 1
            return False
        self.port.write(self.enc, 0, n + 1)
        self.tx_frames += 1
        return True
