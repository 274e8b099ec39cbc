/**
 * Splits an MQTT byte stream into packets (fixed header + remaining length, MQTT 2.2), keeping
 * the unfinished tail of one socket read for the next. Used by the gateway's ingest client and by
 * the simulators' publisher, which both decode their hot packet types in place.
 */
export class PacketStream {
  private leftover?: Buffer;

  /**
   * Calls `onPacket(buf, b0, packetStart, bodyStart, end)` for each complete packet in order; it may return
   * false to stop (the connection was dropped meanwhile). Returns an error text for a malformed
   * stream, else undefined.
   */
  push(
    chunk: Buffer,
    onPacket: (buf: Buffer, b0: number, off: number, start: number, end: number) => boolean | void,
  ): string | undefined {
    let buf = chunk;
    if (this.leftover) {
      buf = Buffer.concat([this.leftover, chunk]);
      this.leftover = undefined;
    }
    const len = buf.length;
    let off = 0;
    while (off + 2 <= len) {
      // Remaining length: 1 to 4 bytes, 7 bits each.
      let rl = 0;
      let mult = 1;
      let i = off + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < len; n++) {
        const b = buf[i++]!;
        rl += (b & 0x7f) * mult;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        mult *= 128;
      }
      if (!complete) {
        if (i - off > 4) return 'protocol error: malformed remaining length';
        break;
      }
      const end = i + rl;
      if (end > len) break;
      if (onPacket(buf, buf[off]!, off, i, end) === false) return undefined;
      off = end;
    }
    // Keep only the unfinished tail (a copy, so the large chunk it came from can be freed).
    if (off < len) this.leftover = Buffer.from(buf.subarray(off));
    return undefined;
  }

  reset(): void {
    this.leftover = undefined;
  }
}
